package kernel

// ContentLimit is the largest content, in bytes, a write or edit of an
// artifact of type typ may carry: Config.MaxModuleBytes for a contract or
// an executable, Config.MaxContentBytes for any other type, and the larger
// of the two for typ "" (a type not known yet). Front ends bound the bodies
// that carry content by it (the HTTP API's raw uploads), so that every
// module the kernel accepts can reach it.
func (k *Kernel) ContentLimit(typ string) int {
	switch {
	case typ == "":
		return max(k.cfg.MaxContentBytes, k.cfg.MaxModuleBytes)
	case isModule(typ):
		return k.cfg.MaxModuleBytes
	default:
		return k.cfg.MaxContentBytes
	}
}
