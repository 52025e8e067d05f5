;; Threads and atomics are not metered: Instrument rejects this module
;; (built with --enable-threads).
(module
  (memory 1 1 shared)
  (func (export "f") (result i32)
    i32.const 0
    i32.atomic.load))
