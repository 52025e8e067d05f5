;; alloc_init.wat: a kh_alloc that burns 5M fuel (1,000,000 turns of a 5-fuel
;; loop) for any size: within the initialisation budget, so the host's
;; kh_alloc at initialisation pays it, once per instance. kh_check allows, or
;; traps when the request's depth field (offset 12) is 1, ending its instance.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (local $i i32)
    (local.set $i (i32.const 1000000))
    (loop $burn (br_if $burn (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (i32.eq (i32.load offset=12 (local.get $p)) (i32.const 1)) (then (unreachable)))
    (i64.const 0x100000001c)))
