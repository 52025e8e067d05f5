;; stale.wat: a contract that reads its request region past the request's
;; length (the region is 64 KiB at 65536, reused by every call) and denies
;; when any of the next 4096 bytes is not zero: a byte of an earlier, longer
;; request.
(module
  (memory (export "memory") 2)
  ;; the decision, 28 bytes at address 16; its allowed byte is at 22
  (data (i32.const 16) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 61440)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $i i32) (local $end i32) (local $seen i32)
    (local.set $i (i32.add (local.get $p) (local.get $n)))
    (local.set $end (i32.add (local.get $i) (i32.const 4096)))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $seen (i32.or (local.get $seen) (i32.load8_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.store8 (i32.const 22) (i32.eqz (local.get $seen)))
    (i64.const 0x100000001c)))
