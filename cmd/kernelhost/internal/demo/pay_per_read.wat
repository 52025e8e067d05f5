;; pay_per_read.wat: an access contract that charges for reads, in
;; WebAssembly text against abi/SPEC.md (ABI version 1). Build:
;;
;;   wat2wasm -o pay_per_read.wasm pay_per_read.wat
;;
;; Rule. read: allowed for everyone at the price in the contract's own config
;; (the contract artifact's metadata, the request's config list), charged to
;; config "sponsor" (empty or absent: the caller pays) and credited to config
;; "payee" (empty or absent: burned). The kernel honours a sponsor only if it
;; has consented to this contract (grant_consent). Every other action: only
;; the controller (metadata "controller" when set, else created_by).
;;
;; Config keys: price (decimal, at most 18 digits; absent means 0), sponsor,
;; payee. A malformed request or config denies (fail closed).
;;
;; Memory: constant strings below 1024, the decision at 1024 (at most 1308
;; bytes), the request arena from 4096 (kh_alloc grows memory to fit). The
;; globals are reset by every kh_check: no state survives between calls.
(module
  (memory (export "memory") 1)

  (data (i32.const 16) "controller")
  (data (i32.const 32) "price")
  (data (i32.const 48) "sponsor")
  (data (i32.const 64) "payee")
  (data (i32.const 96) "pay_per_read: paid read")
  (data (i32.const 128) "pay_per_read: malformed request")
  (data (i32.const 192) "pay_per_read: only the controller may change this artifact")
  (data (i32.const 256) "pay_per_read: config price is not a decimal integer")
  (data (i32.const 320) "pay_per_read: config sponsor or payee is too long")
  (data (i32.const 384) "pay_per_read: unknown action")
  (data (i32.const 448) "pay_per_read: controller acts")

  ;; parser state: read position, end of the request, overrun flag, length
  ;; of the last str read
  (global $pos (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  (global $bad (mut i32) (i32.const 0))
  (global $len (mut i32) (i32.const 0))
  ;; values found in metadata and config: pointer, and length (-1: absent)
  (global $ctl_p (mut i32) (i32.const 0))
  (global $ctl_l (mut i32) (i32.const -1))
  (global $price_p (mut i32) (i32.const 0))
  (global $price_l (mut i32) (i32.const -1))
  (global $sponsor_p (mut i32) (i32.const 0))
  (global $sponsor_l (mut i32) (i32.const -1))
  (global $payee_p (mut i32) (i32.const 0))
  (global $payee_l (mut i32) (i32.const -1))

  (func (export "kh_abi_version") (result i32) (i32.const 1))

  ;; kh_alloc returns the arena at 4096, growing memory to hold $n bytes.
  (func (export "kh_alloc") (param $n i32) (result i32)
    (local $need i32)
    (if (i32.gt_u (local.get $n) (i32.const 0x7fff0000)) (then (return (i32.const 0))))
    (local.set $need
      (i32.shr_u (i32.add (i32.add (local.get $n) (i32.const 4096)) (i32.const 65535)) (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 4096))

  ;; $str reads the str at $pos: returns its bytes' address, sets $len and
  ;; advances $pos. On overrun it sets $bad and returns 0.
  (func $str (result i32)
    (local $p i32) (local $l i32)
    (if (i32.or (global.get $bad)
                (i32.gt_u (i32.add (global.get $pos) (i32.const 4)) (global.get $end)))
      (then (global.set $bad (i32.const 1)) (global.set $len (i32.const 0)) (return (i32.const 0))))
    (local.set $l (i32.load (global.get $pos)))
    (local.set $p (i32.add (global.get $pos) (i32.const 4)))
    (if (i32.gt_u (local.get $l) (i32.sub (global.get $end) (local.get $p)))
      (then (global.set $bad (i32.const 1)) (global.set $len (i32.const 0)) (return (i32.const 0))))
    (global.set $pos (i32.add (local.get $p) (local.get $l)))
    (global.set $len (local.get $l))
    (local.get $p))

  ;; $eq compares the byte strings ($a, $al) and ($b, $bl).
  (func $eq (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $al)))
        (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b)))
          (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $al (i32.sub (local.get $al) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  ;; $kvlist reads the kvlist at $pos. In the metadata ($config 0) it looks
  ;; for "controller"; in the config ($config 1) for price, sponsor, payee.
  (func $kvlist (param $config i32)
    (local $n i32) (local $k i32) (local $kl i32) (local $v i32) (local $vl i32)
    (if (i32.gt_u (i32.add (global.get $pos) (i32.const 4)) (global.get $end))
      (then (global.set $bad (i32.const 1)) (return)))
    (local.set $n (i32.load (global.get $pos)))
    (global.set $pos (i32.add (global.get $pos) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.or (i32.eqz (local.get $n)) (global.get $bad)))
        (local.set $k (call $str))
        (local.set $kl (global.get $len))
        (local.set $v (call $str))
        (local.set $vl (global.get $len))
        (br_if $done (global.get $bad))
        (if (local.get $config)
          (then
            (if (call $eq (local.get $k) (local.get $kl) (i32.const 32) (i32.const 5))
              (then (global.set $price_p (local.get $v)) (global.set $price_l (local.get $vl))))
            (if (call $eq (local.get $k) (local.get $kl) (i32.const 48) (i32.const 7))
              (then (global.set $sponsor_p (local.get $v)) (global.set $sponsor_l (local.get $vl))))
            (if (call $eq (local.get $k) (local.get $kl) (i32.const 64) (i32.const 5))
              (then (global.set $payee_p (local.get $v)) (global.set $payee_l (local.get $vl)))))
          (else
            (if (call $eq (local.get $k) (local.get $kl) (i32.const 16) (i32.const 10))
              (then (global.set $ctl_p (local.get $v)) (global.set $ctl_l (local.get $vl))))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))

  ;; $parse reads ($p, $l) as a decimal number of at most 18 digits (so it
  ;; cannot overflow); anything else sets $bad.
  (func $parse (param $p i32) (param $l i32) (result i64)
    (local $v i64) (local $c i32)
    (if (i32.gt_u (local.get $l) (i32.const 18))
      (then (global.set $bad (i32.const 1)) (return (i64.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $l)))
        (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (if (i32.gt_u (local.get $c) (i32.const 9))
          (then (global.set $bad (i32.const 1)) (return (i64.const 0))))
        (local.set $v (i64.add (i64.mul (local.get $v) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $l (i32.sub (local.get $l) (i32.const 1)))
        (br $next)))
    (local.get $v))

  ;; $put writes a str (u32 length, bytes) at $at and returns the end.
  (func $put (param $at i32) (param $p i32) (param $l i32) (result i32)
    (i32.store (local.get $at) (local.get $l))
    (local.set $at (i32.add (local.get $at) (i32.const 4)))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $l)))
        (i32.store8 (local.get $at) (i32.load8_u (local.get $p)))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $l (i32.sub (local.get $l) (i32.const 1)))
        (br $next)))
    (local.get $at))

  ;; $decide encodes a decision at 1024 (SPEC section 4) and returns
  ;; kh_check's result: (address << 32) | length.
  (func $decide (param $allowed i32) (param $cost i64)
                (param $payer i32) (param $payerl i32) (param $payee i32) (param $payeel i32)
                (param $reason i32) (param $reasonl i32) (result i64)
    (local $at i32)
    (i32.store (i32.const 1024) (i32.const 0x4344484b)) ;; "KHDC"
    (i32.store16 (i32.const 1028) (i32.const 1))
    (i32.store8 (i32.const 1030) (local.get $allowed))
    (i32.store8 (i32.const 1031) (i32.const 0))
    (i64.store (i32.const 1032) (local.get $cost))
    (local.set $at (call $put (i32.const 1040) (local.get $payer) (local.get $payerl)))
    (local.set $at (call $put (local.get $at) (local.get $payee) (local.get $payeel)))
    (local.set $at (call $put (local.get $at) (local.get $reason) (local.get $reasonl)))
    (i64.or (i64.const 0x40000000000) ;; 1024 << 32
            (i64.extend_i32_u (i32.sub (local.get $at) (i32.const 1024)))))

  (func $deny (param $reason i32) (param $reasonl i32) (result i64)
    (call $decide (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (local.get $reason) (local.get $reasonl)))

  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $action i32) (local $caller i32) (local $callerl i32) (local $cb i32) (local $cbl i32)
    (local $cost i64)
    (global.set $bad (i32.const 0))
    (global.set $ctl_l (i32.const -1))
    (global.set $price_l (i32.const -1))
    (global.set $sponsor_l (i32.const -1))
    (global.set $payee_l (i32.const -1))
    (global.set $end (i32.add (local.get $p) (local.get $n)))
    ;; header: at least 48 bytes, magic "KHRQ", version 1
    (if (i32.lt_u (local.get $n) (i32.const 48))
      (then (return (call $deny (i32.const 128) (i32.const 31)))))
    (if (i32.or (i32.ne (i32.load (local.get $p)) (i32.const 0x5152484b))
                (i32.ne (i32.load16_u offset=4 (local.get $p)) (i32.const 1)))
      (then (return (call $deny (i32.const 128) (i32.const 31)))))
    (local.set $action (i32.load16_u offset=6 (local.get $p)))
    (global.set $pos (i32.add (local.get $p) (i32.const 48)))
    (local.set $caller (call $str))
    (local.set $callerl (global.get $len))
    (drop (call $str)) ;; target_id
    (drop (call $str)) ;; target_type
    (local.set $cb (call $str)) ;; created_by
    (local.set $cbl (global.get $len))
    (drop (call $str)) ;; access_contract
    (drop (call $str)) ;; method
    (drop (call $str)) ;; args
    (call $kvlist (i32.const 0)) ;; metadata
    (call $kvlist (i32.const 1)) ;; config
    (if (global.get $bad)
      (then (return (call $deny (i32.const 128) (i32.const 31)))))

    (if (i32.eq (local.get $action) (i32.const 1)) ;; read
      (then
        (if (i32.ne (global.get $price_l) (i32.const -1))
          (then (local.set $cost (call $parse (global.get $price_p) (global.get $price_l)))))
        (if (global.get $bad)
          (then (return (call $deny (i32.const 256) (i32.const 51)))))
        (if (i32.eq (global.get $sponsor_l) (i32.const -1)) (then (global.set $sponsor_l (i32.const 0))))
        (if (i32.eq (global.get $payee_l) (i32.const -1)) (then (global.set $payee_l (i32.const 0))))
        (if (i32.or (i32.gt_u (global.get $sponsor_l) (i32.const 128))
                    (i32.gt_u (global.get $payee_l) (i32.const 128)))
          (then (return (call $deny (i32.const 320) (i32.const 49)))))
        (return (call $decide (i32.const 1) (local.get $cost)
          (global.get $sponsor_p) (global.get $sponsor_l)
          (global.get $payee_p) (global.get $payee_l)
          (i32.const 96) (i32.const 23)))))

    (if (i32.or (i32.lt_u (local.get $action) (i32.const 2)) (i32.gt_u (local.get $action) (i32.const 6)))
      (then (return (call $deny (i32.const 384) (i32.const 28)))))
    ;; the controller: metadata "controller" when set, else created_by; an
    ;; empty controller matches nobody
    (if (i32.eq (global.get $ctl_l) (i32.const -1))
      (then (global.set $ctl_p (local.get $cb)) (global.set $ctl_l (local.get $cbl))))
    (if (i32.and (i32.ne (global.get $ctl_l) (i32.const 0))
                 (call $eq (local.get $caller) (local.get $callerl) (global.get $ctl_p) (global.get $ctl_l)))
      (then (return (call $decide (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 448) (i32.const 29)))))
    (call $deny (i32.const 192) (i32.const 58))))
