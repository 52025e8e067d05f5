;; The "spectest" module that the official WebAssembly spec testsuite imports
;; from (TestFuelPassSpecSuite registers it in both of its runtimes): the
;; globals, table, memory and print functions of the reference interpreter's
;; spectest module, as the testsuite's imports.wast expects them. The print
;; functions print nothing; a test only needs their types.
(module
  (global (export "global_i32") i32 (i32.const 666))
  (global (export "global_i64") i64 (i64.const 666))
  (global (export "global_f32") f32 (f32.const 666.6))
  (global (export "global_f64") f64 (f64.const 666.6))
  (table (export "table") 10 20 funcref)
  (memory (export "memory") 1 2)
  (func (export "print"))
  (func (export "print_i32") (param i32))
  (func (export "print_i64") (param i64))
  (func (export "print_f32") (param f32))
  (func (export "print_f64") (param f64))
  (func (export "print_i32_f32") (param i32 f32))
  (func (export "print_f64_f64") (param f64 f64)))
