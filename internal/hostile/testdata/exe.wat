;; exe.wat: a hostile executable (exports kh_invoke, imports the kernel host
;; API), deployed as artifact "x/exe". The first byte of the invoke method
;; picks the attack; args is a host-call request (JSON) where one is needed:
;;   "c" call(args); an error response fails the invocation with the response
;;       as message, an ok one is returned as output
;;   "t" call(args), then trap (its effects must be rolled back)
;;   "s" loop forever
;;   "o" call with a request region outside memory
;;   "w" call(args) with an output region outside memory
;;   "l" log a region outside memory
;;   "f" call(args) until a response is an error, which fails the invocation
;;       with the response as message; ok "no limit" after 20000 ok responses
;;   "r" invoke itself (method "r") through the kernel, as "c" does
(module
  (import "kernel" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (import "kernel" "log" (func $log (param i32 i32)))
  (memory (export "memory") 2)
  ;; the invoke result header at 1024; output follows at 1036
  (data (i32.const 1024) "KHIR\01\00\00\00")
  (data (i32.const 256) "{\"action\":{\"kind\":\"invoke\",\"target\":\"x/exe\",\"method\":\"r\"}}")
  (data (i32.const 512) "no limit")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  ;; address after the length-prefixed string at $p
  (func $skip (param $p i32) (result i32)
    (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
  ;; finish the result: status 0 ok / 1 error, $len output bytes at 1036
  (func $result (param $status i32) (param $len i32) (result i64)
    (if (i32.gt_u (local.get $len) (i32.const 30000)) (then (local.set $len (i32.const 30000))))
    (i32.store8 (i32.const 1030) (local.get $status))
    (i32.store (i32.const 1032) (local.get $len))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32))
            (i64.extend_i32_u (i32.add (i32.const 12) (local.get $len)))))
  ;; the response of $len bytes at 1036 as an ok result when it reads
  ;; {"ok":true, else as an error result
  (func $strict (param $len i32) (result i64)
    (call $result
      (i32.ne (i32.load8_u (i32.const 1042)) (i32.const 116)) ;; 't'
      (local.get $len)))
  (func (export "kh_invoke") (param $p i32) (param $n i32) (result i64)
    (local $m i32) (local $a i32) (local $alen i32) (local $op i32) (local $i i32) (local $r i32)
    ;; method: after caller, target_id, target_type, created_by, access_contract
    (local.set $m (call $skip (call $skip (call $skip (call $skip (call $skip
      (i32.add (local.get $p) (i32.const 48))))))))
    (local.set $a (call $skip (local.get $m)))
    (local.set $alen (i32.load (local.get $a)))
    (local.set $a (i32.add (local.get $a) (i32.const 4)))
    (if (i32.eqz (i32.load (local.get $m)))
      (then (return (call $result (i32.const 0) (i32.const 0)))))
    (local.set $op (i32.load8_u (i32.add (local.get $m) (i32.const 4))))
    (if (i32.eq (local.get $op) (i32.const 99)) ;; c
      (then (return (call $strict
        (call $call (local.get $a) (local.get $alen) (i32.const 1036) (i32.const 30000))))))
    (if (i32.eq (local.get $op) (i32.const 116)) ;; t
      (then
        (drop (call $call (local.get $a) (local.get $alen) (i32.const 1036) (i32.const 30000)))
        (unreachable)))
    (if (i32.eq (local.get $op) (i32.const 115)) ;; s
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $op) (i32.const 111)) ;; o
      (then (return (call $result (i32.const 0)
        (call $call (i32.const 0xfffffff0) (i32.const 64) (i32.const 1036) (i32.const 30000))))))
    (if (i32.eq (local.get $op) (i32.const 119)) ;; w
      (then (return (call $result (i32.const 0)
        (call $call (local.get $a) (local.get $alen) (i32.const 0xfffffff0) (i32.const 64))))))
    (if (i32.eq (local.get $op) (i32.const 108)) ;; l
      (then
        (call $log (i32.const 0xfffffff0) (i32.const 64))
        (return (call $result (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $op) (i32.const 102)) ;; f
      (then
        (loop $again
          (local.set $r (call $call (local.get $a) (local.get $alen) (i32.const 1036) (i32.const 30000)))
          (if (i32.ne (i32.load8_u (i32.const 1042)) (i32.const 116))
            (then (return (call $result (i32.const 1) (local.get $r)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $again (i32.lt_u (local.get $i) (i32.const 20000))))
        (memory.copy (i32.const 1036) (i32.const 512) (i32.const 8))
        (return (call $result (i32.const 0) (i32.const 8)))))
    (if (i32.eq (local.get $op) (i32.const 114)) ;; r
      (then (return (call $strict
        (call $call (i32.const 256) (i32.const 58) (i32.const 1036) (i32.const 30000))))))
    (call $result (i32.const 1) (i32.const 0))))
