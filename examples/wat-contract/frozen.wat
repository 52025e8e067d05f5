;; frozen.wat: an access contract in WebAssembly text against abi/SPEC.md
;; (ABI version 1) that freezes what it governs. Build:
;;
;;   wat2wasm -o frozen.wasm frozen.wat
;;
;; Rule. read and invoke: allowed for everyone, free. write, edit, delete and
;; set_contract: denied for everyone, the creator included, so the artifact
;; and its contract can never change again (SPEC section 8 suggests this for
;; an executable that holds value). Unknown actions and malformed requests are
;; denied (fail closed).
;;
;; The contract reads only the fixed header of the request (SPEC section 3):
;; magic, version and action. Its four possible answers are complete encoded
;; decisions (SPEC section 4) stored as data, so kh_check only picks one.
;;
;; Memory: the decisions below 1024, the request arena from 1024 (kh_alloc
;; grows memory to fit). No global state: nothing survives between calls.
(module
  (memory (export "memory") 1)

  ;; A decision is "KHDC", version 1 (u16), allowed (u8), reserved (u8),
  ;; cost (u64), then the strs payer, payee and reason (u32 length, bytes).
  ;; Empty payer: the caller; empty payee: burned; the cost is 0 anyway.

  ;; 16: allow, empty reason (28 bytes)
  (data (i32.const 16)
    "KHDC" "\01\00" "\01" "\00" "\00\00\00\00\00\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; 64: deny a change (28 + 42 bytes)
  (data (i32.const 64)
    "KHDC" "\01\00" "\00" "\00" "\00\00\00\00\00\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\2a\00\00\00" "frozen: this artifact can no longer change")
  ;; 160: deny an unknown action (28 + 22 bytes)
  (data (i32.const 160)
    "KHDC" "\01\00" "\00" "\00" "\00\00\00\00\00\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\16\00\00\00" "frozen: unknown action")
  ;; 224: deny a malformed request (28 + 25 bytes)
  (data (i32.const 224)
    "KHDC" "\01\00" "\00" "\00" "\00\00\00\00\00\00\00\00"
    "\00\00\00\00" "\00\00\00\00" "\19\00\00\00" "frozen: malformed request")

  (func (export "kh_abi_version") (result i32) (i32.const 1))

  ;; kh_alloc returns the arena at 1024, growing memory to hold $n bytes
  ;; there; 0 when it cannot.
  (func (export "kh_alloc") (param $n i32) (result i32)
    (local $pages i32)
    (if (i32.gt_u (local.get $n) (i32.const 0x7fff0000)) (then (return (i32.const 0))))
    (local.set $pages
      (i32.shr_u (i32.add (local.get $n) (i32.const 66559)) (i32.const 16))) ;; ceil((1024 + n) / 65536)
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))

  ;; kh_check returns (address << 32) | length of one of the decisions above.
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $action i32)
    ;; at least the 48-byte header, starting "KHRQ", version 1
    (if (i32.lt_u (local.get $n) (i32.const 48))
      (then (return (i64.const 0xe000000035))))
    (if (i32.ne (i32.load (local.get $p)) (i32.const 0x5152484b)) ;; "KHRQ"
      (then (return (i64.const 0xe000000035))))
    (if (i32.ne (i32.load16_u offset=4 (local.get $p)) (i32.const 1))
      (then (return (i64.const 0xe000000035))))
    (local.set $action (i32.load16_u offset=6 (local.get $p)))
    ;; 1 read, 5 invoke: allowed
    (if (i32.or (i32.eq (local.get $action) (i32.const 1)) (i32.eq (local.get $action) (i32.const 5)))
      (then (return (i64.const 0x100000001c))))
    ;; 2 write, 3 edit, 4 delete, 6 set_contract: denied
    (if (i32.and (i32.ge_u (local.get $action) (i32.const 2)) (i32.le_u (local.get $action) (i32.const 6)))
      (then (return (i64.const 0x4000000046))))
    (i64.const 0xa000000032)))
