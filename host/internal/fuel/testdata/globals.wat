;; Imported globals come first in the global index space: the fuel global
;; goes after them and after the module's own globals. No export section
;; (Instrument adds one), a passive data segment with memory.init, and a
;; start function, which runs on the fuel the global starts with.
(module
  (import "env" "g" (global $g i32))
  (import "env" "h" (global $h (mut i64)))
  (memory 1)
  (global $own i32 (global.get $g))
  (data $d "hello, world")
  (func $f
    i32.const 100
    i32.const 0
    i32.const 12
    memory.init $d
    i32.const 100
    i32.load8_u
    global.get $own
    i32.add
    i64.extend_i32_u
    global.set $h)
  (start $f)
)
