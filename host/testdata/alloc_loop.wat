;; alloc_loop.wat: a kh_alloc that burns 20M fuel (4,000,000 turns of a
;; 5-fuel loop: local.get, i32.const, i32.sub, local.tee, br_if) before it
;; answers, for any size. The host asks kh_alloc for its first region at
;; initialisation, whose budget (10M by default) this exceeds: the module is
;; refused at deploy. Before, kh_alloc ran on a cold instance's first call and
;; its fuel was never charged. kh_check allows, or traps when the request's
;; depth field (offset 12) is 1.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (local $i i32)
    (local.set $i (i32.const 4000000))
    (loop $burn (br_if $burn (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (i32.eq (i32.load offset=12 (local.get $p)) (i32.const 1)) (then (unreachable)))
    (i64.const 0x100000001c)))
