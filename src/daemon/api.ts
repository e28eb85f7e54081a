/**
 * The daemon's API as `api/openapi.json` describes it: the routes (method, path template,
 * operationId) the server dispatches on, and a validator for each request body compiled from the
 * same document, so the document is the one place a route or a body shape is defined.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { dreError } from '../core/errors.js';

export const OPENAPI_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'api', 'openapi.json');

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface OpenApiParameter {
  name: string;
  in: 'path' | 'query';
  required?: boolean;
  schema?: { enum?: string[] };
}
interface OpenApiOperation {
  operationId: string;
  parameters?: OpenApiParameter[];
  requestBody?: { content: { 'application/json': { schema: unknown } } };
}
export interface OpenApiDocument {
  paths: Record<string, Partial<Record<(typeof METHODS)[number], OpenApiOperation>>>;
  components: { schemas: Record<string, unknown> };
}

export interface Route {
  method: string;
  template: string;
  operationId: string;
  /** Literal segments are strings; `{param}` segments are `{ param, allowed }`. */
  segments: (string | { param: string; allowed?: string[] })[];
  validateBody?: ValidateFunction;
}

export interface Match {
  route: Route;
  params: Record<string, string>;
}

export function loadDocument(path = OPENAPI_PATH): OpenApiDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as OpenApiDocument;
}

/** Schema references of the document, made absolute so a body schema compiles on its own. */
function absoluteRefs(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"dred.json#/components/'));
}

export class Api {
  readonly routes: Route[] = [];
  private readonly ajv = new Ajv2020({ strict: false, allErrors: false });

  constructor(readonly doc: OpenApiDocument = loadDocument()) {
    this.ajv.addSchema({ $id: 'dred.json', components: doc.components });
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const enums = new Map((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, p.schema?.enum]));
        const segments = template
          .split('/')
          .slice(1)
          .map((s) => (s.startsWith('{') ? { param: s.slice(1, -1), allowed: enums.get(s.slice(1, -1)) } : s));
        const body = op.requestBody?.content['application/json'].schema;
        this.routes.push({
          method: method.toUpperCase(),
          template,
          operationId: op.operationId,
          segments,
          validateBody: body === undefined ? undefined : this.ajv.compile(absoluteRefs(body) as object),
        });
      }
    }
    // A route with a literal where another has a parameter wins (/1.0/app/... over /1.0/{kind}/...).
    const literals = (r: Route) => r.segments.filter((s) => typeof s === 'string').length;
    this.routes.sort((a, b) => literals(b) - literals(a));
  }

  /** A validator for one named schema of the document's components (e.g. the per-kind create config). */
  schema(name: string): ValidateFunction {
    return this.ajv.getSchema(`dred.json#/components/schemas/${name}`)!;
  }

  errorsText(v: ValidateFunction, what: string): string {
    return this.ajv.errorsText(v.errors, { dataVar: what });
  }

  /**
   * The route for a request: `undefined` when no path matches (404), `'method'` when a path matches
   * under another method (405). Path segments are percent-decoded; a bad encoding is bad input.
   */
  match(method: string, pathname: string): Match | 'method' | undefined {
    const parts = pathname.split('/').slice(1);
    let decoded: string[];
    try {
      decoded = parts.map(decodeURIComponent);
    } catch {
      throw dreError('DRE_ERR_INVALID_ARGUMENT', `path ${JSON.stringify(pathname)} is not validly percent-encoded`);
    }
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts, decoded);
      if (!params) continue;
      if (route.method === method) return { route, params };
      pathMatched = true;
    }
    return pathMatched ? 'method' : undefined;
  }
}

function matchSegments(segments: Route['segments'], raw: string[], decoded: string[]): Record<string, string> | undefined {
  if (segments.length !== raw.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (typeof s === 'string') {
      if (s !== raw[i]) return undefined;
    } else {
      if (raw[i] === '' || (s.allowed && !s.allowed.includes(decoded[i]))) return undefined;
      params[s.param] = decoded[i];
    }
  }
  return params;
}
