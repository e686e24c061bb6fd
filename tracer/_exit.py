"""Exit statuses of the ``tracer`` command, in one place (documented in docs/cli.md).

A guest that calls ``proc_exit(n)`` makes ``tracer run`` exit ``n``. The other statuses follow sysexits(3) for
our own errors and wasmtime's CLI for traps (134, as for SIGABRT).
"""

OK = 0
USAGE = 64  # a bad flag or argument value (EX_USAGE)
DATA = 65  # the input is not what it claims: not wasm, truncated, a debug file that does not match (EX_DATAERR)
NO_INPUT = 66  # a file that does not exist or cannot be read (EX_NOINPUT)
UNAVAILABLE = 69  # a collector or other service could not be reached (EX_UNAVAILABLE)
SOFTWARE = 70  # a bug of ours (EX_SOFTWARE); the line says where to report it
TEMPFAIL = 75  # telemetry still pending after a flush (EX_TEMPFAIL)
TRAP = 134  # outcome "exception": the guest trapped or panicked
HOST_ERROR = 135  # outcome "hostError": a host import failed
EXCEEDED_MEMORY = 136  # outcome "exceededMemory"
EXCEEDED_CPU = 152  # outcome "exceededCpu" (fuel), as for SIGXCPU
EXCEEDED_WALL_TIME = 142  # outcome "exceededWallTime", as for SIGALRM
