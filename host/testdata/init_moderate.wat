;; init_moderate.wat: initialisation that does moderate work: the start
;; function and _initialize each call random_get(64 KiB) 8 times into the
;; third page (about a million fuel in all, a tenth of the default
;; initialisation budget). kh_check calls random_get(64, n), n the request's
;; depth field (offset 12), and allows, so that a check's fuel grows with the
;; bytes it asks for. The request region is the second page.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 3)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func $fill (local $i i32)
    (local.set $i (i32.const 8))
    (loop $again
      (drop (call $random_get (i32.const 131072) (i32.const 65536)))
      (br_if $again (local.tee $i (i32.sub (local.get $i) (i32.const 1))))))
  (start $fill)
  (func (export "_initialize") (call $fill))
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (call $random_get (i32.const 64) (i32.load offset=12 (local.get $p))) (then (unreachable)))
    (i64.const 0x100000001c)))
