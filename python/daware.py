"""D-Aware for Python programs in D-RE application containers (spec D-RE APIs E1.02, chapter 2).

Pure Python (no libdaware needed): the same names as daware.h, the same printf rules and log tags
as the Node and C libraries (test/daware/vectors.json), the registry of docs/daware-protocol.md.
Messages go out through the standard syslog module. Callbacks run in Python's signal handler (on the
main thread, between bytecodes), so they may do anything Python code may, logging included.
"""
import inspect
import os
import re
import signal
import socket
import sys
import syslog as _syslog
import time
import atexit

from syslog import (LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG,  # noqa: F401
                    LOG_KERN, LOG_USER, LOG_MAIL, LOG_DAEMON, LOG_AUTH, LOG_SYSLOG, LOG_LPR, LOG_NEWS, LOG_UUCP,
                    LOG_CRON, LOG_AUTHPRIV, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5,
                    LOG_LOCAL6, LOG_LOCAL7, LOG_PID, LOG_CONS, LOG_ODELAY, LOG_NDELAY, LOG_NOWAIT, LOG_PERROR)

LOG_FTP = 11 << 3
LOG_FACMASK = 0x03F8
DAWARE_REGISTRY_DIR = '/run/daware'
DAWARE_PROTOCOL_VERSION = 1

_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug']
_FACILITIES = {0: 'kern', 1: 'user', 2: 'mail', 3: 'daemon', 4: 'auth', 5: 'syslog', 6: 'lpr', 7: 'news', 8: 'uucp',
               9: 'cron', 10: 'authpriv', 11: 'ftp', **{16 + i: 'local%d' % i for i in range(8)}}
_MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

# ---- printf: parsed as src/daware/printf.ts parses it; each conversion by Python's own % ----

_SPEC = re.compile(r'%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d*))?(hh|ll|[hlLqjzZt])?([diouxXcsfFeEgGp%])?')
_WIDE = ('l', 'll', 'q', 'j', 'z', 'Z', 't')


def _int(v):
    if v is None:
        return 0
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _signed(v, length):
    bits = {'hh': 8, 'h': 16}.get(length, 64 if length in _WIDE else None)
    if bits is None:
        return v
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _unsigned(v, length):
    if length == 'hh':
        return v & 0xFF
    if length == 'h':
        return v & 0xFFFF
    if length in ('', 'L') and v >= -(1 << 31):
        return v & 0xFFFFFFFF if v < 0 else v
    return v & 0xFFFFFFFFFFFFFFFF


def _integer(flags, left, width, prec, conv, v):
    """C's integer conversions (precision, '#', '0' and sign as glibc applies them)."""
    digits = {'o': '%o', 'x': '%x', 'X': '%X'}.get(conv, '%d') % abs(v)
    if prec is not None:
        digits = '' if prec == 0 and v == 0 else digits.rjust(prec, '0')
    if '#' in flags and conv == 'o' and not digits.startswith('0'):
        digits = '0' + digits
    prefix = '0' + conv if '#' in flags and v != 0 and conv in 'xX' else ''
    sign = ('-' if v < 0 else '+' if '+' in flags else ' ' if ' ' in flags else '') if conv in 'di' else ''
    if '0' in flags and not left and prec is None:
        return sign + prefix + digits.rjust(width - len(sign) - len(prefix), '0')
    body = sign + prefix + digits
    return body.ljust(width) if left else body.rjust(width)


def sprintf(fmt, *args):
    """Formats fmt with args as C's printf would (the D-Aware rules of test/daware/vectors.json)."""
    out = []
    args = list(args)
    nxt = lambda: args.pop(0) if args else None  # noqa: E731
    i = 0
    fmt = '' if fmt is None else str(fmt)
    while i < len(fmt):
        pct = fmt.find('%', i)
        if pct < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:pct])
        m = _SPEC.match(fmt, pct)
        i = m.end()
        flags, w, p, length, conv = m.group(1), m.group(2), m.group(3), m.group(4) or '', m.group(5)
        if conv is None:
            out.append(m.group(0))
            continue
        if conv == '%':
            out.append('%')
            continue
        left = '-' in flags
        width = None
        if w == '*':
            width = _int(nxt())
            if width < 0:
                left, width = True, -width
        elif w is not None:
            width = int(w)
        prec = None
        if p == '*':
            prec = _int(nxt())
            prec = None if prec < 0 else prec
        elif p is not None:
            prec = int(p or 0)
        flags = ''.join(sorted(set(flags) - {'-'}, key='+ #0'.index)) + ('-' if left else '')
        spec = '%' + flags + ('' if width is None else str(width)) + ('' if prec is None else '.%d' % prec)
        arg = nxt()
        if conv in 'diuoxX':
            v = _signed(_int(arg), length) if conv in 'di' else _unsigned(_int(arg), length)
            out.append(_integer(flags, left, width or 0, prec, conv, v))
        elif conv == 'c':
            ch = arg[:1] if isinstance(arg, str) else chr(_int(arg) & 0xFF)
            out.append((('%' + flags + ('' if width is None else str(width))) + 's') % ch)
        elif conv == 's':
            text = ('(null)' if prec is None or prec >= 6 else '') if arg is None else str(arg)
            out.append((spec + 's') % text)
        elif conv == 'p':
            v = _int(arg) & 0xFFFFFFFFFFFFFFFF
            body = '(nil)' if v == 0 else ('+' if '+' in flags else ' ' if ' ' in flags else '') + '0x%x' % v
            out.append(body.ljust(width or 0) if left else body.rjust(width or 0))
        else:
            x = float(0 if arg is None else arg)
            if x != x or x in (float('inf'), float('-inf')):
                spec = spec.replace('0', '') if width is None else '%' + flags.replace('0', '') + str(width)
            out.append((spec + conv) % x)
    return ''.join(out)


# ---- logging (2.6.1-2.6.4) ----

_state = {'opened': False, 'ident': None, 'option': 0, 'facility': LOG_USER, 'format': None}
_TAG = re.compile(r'%(faci|lvl|time|host|prog|pid|msg|file|line|func)%')


def _program():
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else 'python'


def daware_log_open(ident, option, facility):
    _state.update(ident=None if ident is None else str(ident), option=int(option), facility=int(facility) & LOG_FACMASK)
    _syslog.openlog(_state['ident'] or _program(), _state['option'], _state['facility'])
    _state['opened'] = True


def daware_log_close():
    _syslog.closelog()
    _state.update(opened=False, ident=None)


def daware_log_set_format(logfmt):
    _state['format'] = None if logfmt is None or logfmt == '%msg%' else str(logfmt)


def _expand(tag, pri, file, line, func, msg):
    if tag == 'faci':
        code = ((pri & LOG_FACMASK) or _state['facility']) >> 3
        return _FACILITIES.get(code, str(code))
    if tag == 'lvl':
        return _LEVELS[pri & 7]
    if tag == 'time':
        t = time.localtime()
        return '%s %2d %02d:%02d:%02d' % (_MONTHS[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    if tag == 'host':
        return socket.gethostname()
    if tag == 'prog':
        return _state['ident'] or _program()
    if tag == 'pid':
        return str(os.getpid())
    if tag == 'msg':
        return msg
    if tag == 'file':
        return str(file)
    if tag == 'line':
        return str(line)
    return str(func)


def daware_log(priority, file, line, func, fmt, *args):
    """Logs fmt (C printf) with args at priority (facility | level), naming the source position given."""
    pri = int(priority)
    if not _state['opened']:
        daware_log_open(_state['ident'], _state['option'], _state['facility'])
    msg = sprintf(fmt, *args)
    layout = _state['format']
    if layout is not None:
        msg = _TAG.sub(lambda m: _expand(m.group(1), pri, file, line, func, msg), layout)
    _syslog.syslog(pri, msg)


def DLOG(priority, fmt, *args):
    f = inspect.currentframe().f_back
    daware_log(priority, f.f_code.co_filename, f.f_lineno, f.f_code.co_name, fmt, *args)


def _at_level(level, name):
    def log(fmt, *args):
        f = inspect.currentframe().f_back
        daware_log(level, f.f_code.co_filename, f.f_lineno, f.f_code.co_name, fmt, *args)
    log.__name__ = name
    return log


DLOG_EMERG = _at_level(LOG_EMERG, 'DLOG_EMERG')
DLOG_ALERT = _at_level(LOG_ALERT, 'DLOG_ALERT')
DLOG_CRIT = _at_level(LOG_CRIT, 'DLOG_CRIT')
DLOG_ERR = _at_level(LOG_ERR, 'DLOG_ERR')
DLOG_WARNING = _at_level(LOG_WARNING, 'DLOG_WARNING')
DLOG_NOTICE = _at_level(LOG_NOTICE, 'DLOG_NOTICE')
DLOG_INFO = _at_level(LOG_INFO, 'DLOG_INFO')
DLOG_DEBUG = _at_level(LOG_DEBUG, 'DLOG_DEBUG')

# ---- termination callbacks (2.6.5-2.6.6), registry entries as docs/daware-protocol.md ----

_registrations = {}  # handle -> (signo, func, arg)
_previous = {}  # signo -> the handler before ours
_last = 0
_terminating = False


def _entry(signo, tmp=False):
    name = '%d.%d' % (os.getpid(), signo)
    return os.path.join(DAWARE_REGISTRY_DIR, '.' + name + '.tmp' if tmp else name)


def _start_time():
    with open('/proc/self/stat') as f:
        stat = f.read()
    return stat[stat.rindex(')') + 2:].split(' ')[19]


def _write_entry(signo):
    try:
        if not os.path.isdir(DAWARE_REGISTRY_DIR):
            return False
        tmp = _entry(signo, True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (_start_time() + '\n').encode())
        finally:
            os.close(fd)
        os.rename(tmp, _entry(signo))
        return True
    except OSError:
        return False


def _leave_registry():
    for signo in list(_previous):
        try:
            os.unlink(_entry(signo))
        except OSError:
            pass


def _terminate(signo, _frame):
    global _terminating
    if _terminating:
        return
    _terminating = True
    status = 0
    for handle in sorted(_registrations):
        s, func, arg = _registrations[handle]
        if s != signo:
            continue
        try:
            v = func(signo, arg)
            if isinstance(v, int):
                status = v
        except Exception as e:  # a failing callback: status 1, the others still run
            sys.stderr.write('daware: termination callback for signal %d failed: %r\n' % (signo, e))
            status = 1
    _leave_registry()
    os._exit(status & 0xFF)


def daware_termination_register_callback(signo, func, arg=None):
    """Runs func(signo, arg) when signo comes, then exits with its value; the handle, or None."""
    global _last
    try:
        signo = int(signo)
        valid = signo in signal.valid_signals() and signo not in (signal.SIGKILL, signal.SIGSTOP)
    except (TypeError, ValueError):
        valid = False
    if not valid or not callable(func) or not _write_entry(signo):
        return None
    if signo not in _previous:
        try:
            _previous[signo] = signal.signal(signo, _terminate)
        except (OSError, ValueError):  # not the main thread, or a signal Python keeps
            os.unlink(_entry(signo))
            return None
        if len(_previous) == 1:
            atexit.register(_leave_registry)
    _last += 1
    _registrations[_last] = (signo, func, arg)
    return _last


def daware_termination_unregister_callback(dterm):
    entry = _registrations.pop(dterm, None) if dterm is not None else None
    if entry is None or any(s == entry[0] for s, _, _ in _registrations.values()):
        return
    signal.signal(entry[0], _previous.pop(entry[0]))
    try:
        os.unlink(_entry(entry[0]))
    except OSError:
        pass
