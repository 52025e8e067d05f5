;; The smallest module: no sections at all.
(module)
