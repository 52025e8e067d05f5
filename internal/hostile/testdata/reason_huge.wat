;; reason_huge.wat: an "allowed" decision with a reason of 4 MiB. For a read
;; the returned length covers the whole reason (4 MiB + 28 bytes, far above
;; the 1308-byte cap); for any other action the length is 28, so the reason's
;; length field claims 4 MiB that are not there.
(module
  (memory (export "memory") 80)
  ;; header, cost 0, payer "", payee "", reason length 0x400000
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\40\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (i32.eq (i32.load16_u offset=6 (local.get $p)) (i32.const 1))
      (then (return (i64.const 0x100040001c))))
    (i64.const 0x100000001c)))
