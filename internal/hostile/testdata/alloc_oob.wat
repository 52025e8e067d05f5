;; alloc_oob.wat: kh_alloc returns a region past the end of memory.
(module
  (memory (export "memory") 1)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param i32) (result i32) (i32.const 65530))
  (func (export "kh_check") (param i32 i32) (result i64) (i64.const 0)))
