;; recurse.wat: kh_check recurses without end until the call stack is
;; exhausted, which traps.
(module
  (memory (export "memory") 2)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func $deeper (param $d i64) (result i64)
    (i64.add (call $deeper (i64.add (local.get $d) (i64.const 1))) (local.get $d)))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (call $deeper (i64.const 0))))
