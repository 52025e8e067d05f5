package kernel

import (
	"sort"

	"github.com/kernelhost/kernelhost/abi"
)

// validID reports whether s may name a principal or an artifact: 1 to
// abi.MaxIDLen bytes of letters, digits and - _ . : / @, in segments
// separated by single slashes, none of them empty, "." or "..". An id is
// thus already in the form path.Clean gives it, so that no router, file
// system or client that cleans paths reads it as another id ("a/../b" as
// "b", "a//b" as "a/b", "a/" as "a").
func validID(s string) bool {
	if len(s) == 0 || len(s) > abi.MaxIDLen {
		return false
	}
	seg := 0 // start of the current segment
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			if n := s[seg:i]; n == "" || n == "." || n == ".." {
				return false
			}
			seg = i + 1
			continue
		}
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '@':
		default:
			return false
		}
	}
	return true
}

// idRule says what validID accepts, for error messages.
const idRule = "use letters, digits and - _ . : @ in segments separated by single /, none of them . or .."

// validType reports whether s may name an artifact type: 1 to abi.MaxTypeLen
// bytes of lowercase letters, digits, - and _.
func validType(s string) bool {
	if len(s) == 0 || len(s) > abi.MaxTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Artifact types the kernel knows about.
const (
	TypeContract   = "contract"   // content is an access contract module
	TypeExecutable = "executable" // content is an invocable module
	TypeRight      = "right"      // kernel-managed; reserved
)

// validate checks what can be checked without the store. Every failure is
// INVALID_ARGUMENT except where the code says otherwise.
func (k *Kernel) validate(a *Action) *Error {
	if !validID(a.Caller) {
		return errf(abi.InvalidArgument, "caller %q is not a valid principal id", a.Caller)
	}
	if err := checkFields(a); err != nil {
		return err
	}
	if a.RequestID != "" && !validID(a.RequestID) {
		return errf(abi.InvalidArgument, "request_id %.64q: use 1-128 letters, digits, - _ . : @ in /-separated segments", a.RequestID)
	}
	if a.Amount < 0 || a.PerCallCap < 0 || a.TotalCap < 0 || (a.MaxCost != nil && *a.MaxCost < 0) || (a.MaxLLMCost != nil && *a.MaxLLMCost < 0) {
		return errf(abi.InvalidArgument, "amounts must not be negative")
	}
	if (len(a.Amounts) > 0 || len(a.IDs) > 0) && a.Kind != KindSplitRight && a.Kind != KindMergeRights {
		return errf(abi.InvalidArgument, "amounts and ids belong to split_right and merge_rights only")
	}
	switch a.Kind {
	case KindRead, KindWrite, KindEdit, KindDelete, KindSetContract, KindInvoke:
		if !validID(a.Target) {
			return errf(abi.InvalidArgument, "target %q is not a valid artifact id", a.Target)
		}
		// The limit depends on the artifact's type; the larger one bounds
		// the input here, the exact one is checked once the type is known.
		if len(a.Content) > max(k.cfg.MaxContentBytes, k.cfg.MaxModuleBytes) {
			return errf(abi.InvalidArgument, "content of %d bytes exceeds the limit of %d", len(a.Content), max(k.cfg.MaxContentBytes, k.cfg.MaxModuleBytes))
		}
		if a.Type != "" && !validType(a.Type) {
			return errf(abi.InvalidArgument, "type %q: use 1-%d lowercase letters, digits, - or _", a.Type, abi.MaxTypeLen)
		}
		if a.Contract != "" && !validID(a.Contract) {
			return errf(abi.InvalidArgument, "contract %q is not a valid artifact id", a.Contract)
		}
		if len(a.Metadata) > abi.MaxMetaPairs {
			return errf(abi.InvalidArgument, "%d metadata pairs exceed the limit of %d", len(a.Metadata), abi.MaxMetaPairs)
		}
		for key, v := range a.Metadata {
			if err := checkMetaPair(key, v); err != nil {
				return err
			}
		}
	case KindTransfer:
		if !validID(a.To) {
			return errf(abi.InvalidArgument, "recipient %q is not a valid principal id", a.To)
		}
		if a.Amount <= 0 {
			return errf(abi.InvalidArgument, "transfer amount must be positive, got %d", a.Amount)
		}
		if a.To == a.Caller {
			return errf(abi.InvalidArgument, "cannot transfer to yourself")
		}
	case KindGrantConsent, KindRevokeConsent:
		if !validID(a.Contract) {
			return errf(abi.InvalidArgument, "contract %q is not a valid artifact id", a.Contract)
		}
		if a.Kind == KindGrantConsent && (a.PerCallCap <= 0 || a.TotalCap <= 0) {
			return errf(abi.InvalidArgument, "consent needs positive per_call_cap and total_cap")
		}
	case KindGrantLLMConsent, KindRevokeLLMConsent:
		if !validID(a.To) {
			return errf(abi.InvalidArgument, "to %q is not a valid principal id", a.To)
		}
		if a.To == a.Caller {
			return errf(abi.InvalidArgument, "a principal pays its own LLM calls without consent")
		}
		if a.Kind == KindGrantLLMConsent && (a.PerCallCap <= 0 || a.TotalCap <= 0 || a.Amount <= 0) {
			return errf(abi.InvalidArgument, "LLM consent needs positive per_call_cap and total_cap (micro-dollars) and amount (tokens)")
		}
	case KindSetSpendingLimit:
		// Amount, the new limit, may be 0 (checked non-negative above).
	case KindGrantStanding, KindRevokeStanding:
		if !validID(a.Target) {
			return errf(abi.InvalidArgument, "target %q is not a valid executable id", a.Target)
		}
	case KindTransferQuota, KindConsumeQuota:
		if _, ok := Resource(a.Resource).index(); !ok {
			return errf(abi.InvalidArgument, "unknown resource %q: use one of cpu_rate, llm_rate, llm_budget, disk, memory", a.Resource)
		}
		if a.Amount <= 0 {
			return errf(abi.InvalidArgument, "%s amount must be positive, got %d", a.Kind, a.Amount)
		}
		if a.Kind == KindTransferQuota {
			if !validID(a.To) {
				return errf(abi.InvalidArgument, "recipient %q is not a valid principal id", a.To)
			}
			if a.To == a.Caller {
				return errf(abi.InvalidArgument, "cannot transfer quota to yourself")
			}
		}
	case KindMintRight, KindTransferRight, KindSplitRight, KindMergeRights, KindRedeemRight:
		if err := k.validateRight(a); err != nil {
			return err
		}
	case "":
		return errf(abi.InvalidArgument, "action kind is missing")
	default:
		return errf(abi.InvalidArgument, "unknown action kind %q", a.Kind)
	}
	switch a.Kind {
	case KindRead, KindDelete, KindSetContract:
		if a.Content != nil || len(a.Metadata) > 0 || len(a.Unset) > 0 {
			return errf(abi.InvalidArgument, "%s takes no content or metadata", a.Kind)
		}
	}
	if a.Kind == KindWrite && a.Content == nil {
		a.Content = []byte{} // write replaces the content; nothing means empty
	}
	if a.Kind == KindSetContract && a.Contract == "" {
		return errf(abi.InvalidArgument, "set_contract needs the new contract id")
	}
	if a.Kind == KindEdit && a.Content == nil && len(a.Metadata) == 0 && len(a.Unset) == 0 {
		return errf(abi.InvalidArgument, "edit changes nothing: give content, metadata or unset")
	}
	return nil
}

// checkContentSize applies the content limit of artifacts of type typ.
func (k *Kernel) checkContentSize(typ string, content []byte) *Error {
	limit, what := k.cfg.MaxContentBytes, "data"
	if isModule(typ) {
		limit, what = k.cfg.MaxModuleBytes, "module"
	}
	if len(content) > limit {
		return errf(abi.InvalidArgument, "content of %d bytes exceeds the %s limit of %d", len(content), what, limit)
	}
	return nil
}

func checkMetaPair(key, v string) *Error {
	if key == "" || len(key) > abi.MaxMetaKeyLen {
		return errf(abi.InvalidArgument, "metadata key %q: use 1-%d bytes", key, abi.MaxMetaKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return errf(abi.InvalidArgument, "metadata key %q contains NUL", key)
		}
	}
	if len(v) > abi.MaxMetaValueLen {
		return errf(abi.InvalidArgument, "metadata value of %q: %d bytes exceed %d", key, len(v), abi.MaxMetaValueLen)
	}
	return nil
}

// mergeMeta returns base with set applied and unset keys removed, sorted.
func mergeMeta(base []abi.KV, set map[string]string, unset []string) ([]abi.KV, *Error) {
	m := make(map[string]string, len(base)+len(set))
	for _, kv := range base {
		m[kv.Key] = kv.Value
	}
	for key, v := range set {
		m[key] = v
	}
	for _, key := range unset {
		delete(m, key)
	}
	if len(m) > abi.MaxMetaPairs {
		return nil, errf(abi.InvalidArgument, "metadata would have %d pairs, the limit is %d", len(m), abi.MaxMetaPairs)
	}
	return sortedKVs(m), nil
}

func sortedKVs(m map[string]string) []abi.KV {
	if len(m) == 0 {
		return nil
	}
	out := make([]abi.KV, 0, len(m))
	for key, v := range m {
		out = append(out, abi.KV{Key: key, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func kvMap(kvs []abi.KV) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
