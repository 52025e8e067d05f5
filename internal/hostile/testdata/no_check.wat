;; no_check.wat: does not export kh_check.
(module
  (memory (export "memory") 1)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param i32) (result i32) (i32.const 1024)))
