;; SIMD is not metered: Instrument rejects this module.
(module
  (func (export "f") (result i32)
    v128.const i32x4 1 2 3 4
    i32x4.extract_lane 2))
