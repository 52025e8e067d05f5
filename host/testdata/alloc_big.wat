;; alloc_big.wat: alloc_loop.wat's kh_alloc, burning its 4,000,000 turns only
;; for a region larger than the 16 KiB the host asks for at initialisation:
;; a larger request runs kh_alloc in the call, which must pay for it.
;; alloc_once.wat is the same module with a loop of one turn.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (local $i i32)
    (local.set $i (i32.const 4000000))
    (if (i32.gt_u (local.get $n) (i32.const 16384))
      (then (loop $burn (br_if $burn (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (i32.eq (i32.load offset=12 (local.get $p)) (i32.const 1)) (then (unreachable)))
    (i64.const 0x100000001c)))
