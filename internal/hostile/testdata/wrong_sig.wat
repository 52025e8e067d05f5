;; wrong_sig.wat: kh_check returns i32 instead of i64.
(module
  (memory (export "memory") 1)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kh_check") (param i32 i32) (result i32) (i32.const 0)))
