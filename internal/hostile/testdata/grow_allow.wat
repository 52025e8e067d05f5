;; grow_allow.wat: kh_check grows memory by 64 pages (4 MiB), which the host
;; allows, then answers "allowed": an attempt to use more memory than the
;; caller's memory quota and still be obeyed.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (i32.eq (memory.grow (i32.const 64)) (i32.const -1)) (then (unreachable)))
    (i64.const 0x100000001c)))
