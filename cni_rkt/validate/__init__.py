"""`cni-rkt validate`: an offline linter for CNI net.d files (schemas, plugin parity, rkt rules).

Pipeline: loader (paths -> Documents) -> checks per document -> directory checks (the runtime's
loader model) -> Report -> reporters. Findings are values; nothing here raises for a bad input file.
"""
