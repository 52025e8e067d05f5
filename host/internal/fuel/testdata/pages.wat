;; Page tracking (pages.go): each export writes known bytes of a 512 KiB
;; memory (8 pages), so that the test can check which 1 KiB pages are
;; listed; scatter writes many pages in one call, grow grows the memory.
(module
  (memory (export "memory") 8)
  (data $d "abcdefgh")
  (func (export "store8") (param $a i32) (i32.store8 (local.get $a) (i32.const 1)))
  (func (export "store64") (param $a i32) (i64.store offset=3 (local.get $a) (i64.const -1)))
  (func (export "storef32") (param $a i32) (f32.store (local.get $a) (f32.const 1)))
  (func (export "storef64") (param $a i32) (f64.store (local.get $a) (f64.const 1)))
  (func (export "store16x2") (param $a i32) (param $b i32)
    (i32.store16 (local.get $a) (i32.const 7))
    (i32.store16 (local.get $b) (i32.const 7))
    (i32.store16 (local.get $a) (i32.const 8)))
  (func (export "fill") (param $a i32) (param $n i32) (memory.fill (local.get $a) (i32.const 9) (local.get $n)))
  (func (export "copy") (param $a i32) (param $n i32) (memory.copy (local.get $a) (i32.const 0) (local.get $n)))
  (func (export "init") (param $a i32) (memory.init $d (local.get $a) (i32.const 0) (i32.const 8)))
  (func (export "grow") (param $n i32) (result i32) (memory.grow (local.get $n)))
  (func (export "load") (param $a i32) (result i32) (i32.load (local.get $a)))
  ;; Writes n bytes, one every stride bytes from a: many pages in one call.
  (func (export "scatter") (param $a i32) (param $n i32) (param $stride i32)
    (block $done
      (loop $l
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store8 (local.get $a) (local.get $n))
        (local.set $a (i32.add (local.get $a) (local.get $stride)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $l)))))
