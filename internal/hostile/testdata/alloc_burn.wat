;; alloc_burn.wat: an executable whose kh_alloc burns 20M fuel (4M turns of a
;; 5-fuel loop) before it answers, and whose kh_invoke burns 5M more, then
;; returns ok. kh_alloc's fuel used to go uncharged: the entry point got a
;; fresh budget after it. The host now asks kh_alloc for its first region at
;; initialisation, whose budget (10M) this exceeds: refused at deploy.
(module
  (memory (export "memory") 2)
  ;; the invoke result: ok, no output
  (data (i32.const 1024) "KHIR\01\00\00\00\00\00\00\00")
  (func $burn (param $i i32)
    (loop $again (br_if $again (local.tee $i (i32.sub (local.get $i) (i32.const 1))))))
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (call $burn (i32.const 4000000))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_invoke") (param $p i32) (param $n i32) (result i64)
    (call $burn (i32.const 1000000))
    ;; (1024 << 32) | 12
    (i64.const 0x000004000000000c)))
