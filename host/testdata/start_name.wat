;; start_name.wat: a contract that exports "kh_start", the name under which
;; the host exports a metered module's start function: refused at deploy.
(module
  (memory (export "memory") 1)
  (func (export "kh_start"))
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kh_check") (param i32 i32) (result i64) (i64.const 0)))
