;; The "env" module globals.wat imports: g = 5, h a mutable i64.
(module
  (global (export "g") i32 (i32.const 5))
  (global (export "h") (mut i64) (i64.const 0)))
