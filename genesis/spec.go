package genesis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// Spec is a genesis file: the principals a world starts with, with their
// balances and quotas, and the artifacts it starts with. docs/genesis.md
// describes the format; genesis/example.json is one.
//
//	{
//	  "principals": [
//	    {"id": "alice", "balance": 1000, "quotas": {"disk": 16777216}},
//	    {"id": "bob",   "balance": 500}
//	  ],
//	  "artifacts": [
//	    {"id": "board/welcome", "type": "text", "created_by": "alice", "text": "welcome"},
//	    {"id": "alice/pay", "type": "contract", "created_by": "alice",
//	     "file": "pay_per_read.wasm", "metadata": {"price": "5"}}
//	  ]
//	}
type Spec struct {
	Principals []PrincipalSpec `json:"principals"`
	// Artifacts are written in this order, after every principal exists,
	// so that one may be governed by a contract artifact listed before it.
	Artifacts []ArtifactSpec `json:"artifacts,omitempty"`
}

// PrincipalSpec is one principal of a genesis file.
type PrincipalSpec struct {
	ID      string `json:"id"`
	Balance uint64 `json:"balance"`
	// Quotas set the principal's quota of each resource named (kernel.SetQuota,
	// before any artifact is written); a resource left out keeps the
	// kernel's default (kernel.Config.DefaultQuotas).
	Quotas map[kernel.Resource]int64 `json:"quotas,omitempty"`
}

// ArtifactSpec is one artifact of a genesis file: a write of a new artifact
// by CreatedBy, a principal of the file, who pays its disk as for any
// write. Its content is Text, or the bytes of File; ParseSpec and LoadSpec
// read File into Content.
type ArtifactSpec struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// CreatedBy names the principal of the file that creates the artifact:
	// it is the artifact's created_by and pays its disk.
	CreatedBy string `json:"created_by"`
	// Contract governs the artifact: a genesis contract, an earlier
	// artifact of type contract in the file, or the artifact itself when
	// it is a contract. Empty: DefaultContract.
	Contract string `json:"contract,omitempty"`
	// Text is the content as UTF-8 text. Exactly one of Text and File.
	Text *string `json:"text,omitempty"`
	// File is the path of a file holding the content, relative to the
	// genesis file's directory (LoadSpec) or to the working directory
	// (ParseSpec). Exactly one of Text and File.
	File     string            `json:"file,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Content is File's bytes, read by ParseSpec or LoadSpec; a Spec built
	// in Go may set it instead of Text or File.
	Content []byte `json:"-"`
}

// Bounds on what a genesis file may make ParseSpec read.
const (
	// MaxSpecBytes bounds the JSON of a genesis file.
	MaxSpecBytes = 16 << 20
	// MaxFileBytes bounds one artifact's File: far above the kernel's
	// default content limits (1 MiB for data, 8 MiB for modules), so
	// that only the kernel's own limit, whatever its configuration,
	// refuses a real artifact.
	MaxFileBytes = 64 << 20
	// MaxFilesBytes bounds the Files of one genesis file together.
	MaxFilesBytes = 256 << 20
)

// maxQuota is the largest quota kernel.SetQuota accepts (TestSpecRulesMatchKernel).
const maxQuota = int64(1) << 60

// ParseSpec decodes and validates a genesis file (Spec.Validate), reading
// each artifact's File relative to the working directory. The JSON must be
// exactly one object with no unknown fields and no key given twice, at most
// MaxSpecBytes. Errors are *kernel.Error with code INVALID_ARGUMENT.
func ParseSpec(r io.Reader) (Spec, error) {
	return parseSpec(r, "")
}

// LoadSpec reads the genesis file at path, as ParseSpec, with every
// artifact's File relative to the directory of path.
func LoadSpec(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, invalid("genesis: %v", err)
	}
	defer f.Close()
	return parseSpec(f, filepath.Dir(path))
}

func parseSpec(r io.Reader, dir string) (Spec, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return Spec{}, invalid("genesis: read: %v", err)
	}
	if len(b) > MaxSpecBytes {
		return Spec{}, invalid("genesis: the file exceeds %d bytes", MaxSpecBytes)
	}
	// encoding/json keeps the last of a key given twice: one of the two
	// would be dropped without a word.
	if err := kernel.CheckDuplicateKeys(b); err != nil {
		return Spec{}, invalid("genesis: parse: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, invalid("genesis: parse: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Spec{}, invalid("genesis: parse: data after the top-level object")
	}
	var total int64
	for i := range s.Artifacts {
		a := &s.Artifacts[i]
		if a.File == "" || a.Text != nil {
			continue // Validate names a missing or double content
		}
		path := a.File
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		c, err := readFile(path, MaxFilesBytes-total)
		if err != nil {
			return Spec{}, invalid("genesis: artifacts[%d] (%q): file %q: %v", i, a.ID, a.File, err)
		}
		total += int64(len(c))
		a.Content = c
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// readFile reads the regular file at path, of at most min(MaxFileBytes,
// left) bytes: never a device, a FIFO or a directory, whose read may never
// end.
func readFile(path string, left int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	limit := min(int64(MaxFileBytes), left)
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		if limit < MaxFileBytes {
			return nil, fmt.Errorf("the files of the genesis file exceed %d bytes together", MaxFilesBytes)
		}
		return nil, fmt.Errorf("exceeds %d bytes", MaxFileBytes)
	}
	return b, nil
}

// Validate checks s as the kernel would check what Install does with it,
// so that Install refuses a bad spec before it writes anything: principal
// ids valid and unique (never "genesis"), quotas of known resources between
// 0 and 2^60; artifact ids valid and unique, outside "genesis/"; a valid
// type other than "right"; created_by a principal of s; the contract a
// genesis contract, an earlier contract artifact of s or the artifact
// itself when it is a contract; exactly one content (Text, or File/Content),
// not empty for a contract or an executable; metadata within the ABI's
// bounds. What only the kernel can judge (a module the host refuses, a
// quota the artifacts exceed, contents over the kernel's size limits) fails
// Install. Errors are *kernel.Error with code INVALID_ARGUMENT.
func (s Spec) Validate() error {
	principals := map[string]bool{}
	for i, p := range s.Principals {
		switch {
		case !validID(p.ID):
			return invalid("genesis: principals[%d]: id %q: %s", i, p.ID, idRule)
		case p.ID == Principal:
			return invalid("genesis: principals[%d]: %q is the genesis principal, which Install creates", i, p.ID)
		case principals[p.ID]:
			return invalid("genesis: principals[%d]: %q appears twice", i, p.ID)
		}
		principals[p.ID] = true
		for r, v := range p.Quotas {
			if !knownResource(r) {
				return invalid("genesis: principal %q: unknown resource %q in quotas (known: %s)", p.ID, r, resourceList())
			}
			if v < 0 || v > maxQuota {
				return invalid("genesis: principal %q: quota of %s %d: use 0 to %d", p.ID, r, v, maxQuota)
			}
		}
	}
	genesisContracts := Contracts()
	contracts := map[string]bool{} // contract artifacts of s so far
	artifacts := map[string]bool{}
	for i, a := range s.Artifacts {
		where := fmt.Sprintf("genesis: artifacts[%d] (%q)", i, a.ID)
		switch {
		case !validID(a.ID):
			return invalid("%s: id: %s", where, idRule)
		case a.ID == Principal || strings.HasPrefix(a.ID, Principal+"/"):
			return invalid("%s: ids under %s/ are the genesis principal's", where, Principal)
		case artifacts[a.ID]:
			return invalid("%s: appears twice", where)
		case !validType(a.Type):
			return invalid("%s: type %q: use 1-%d lowercase letters, digits, - or _", where, a.Type, abi.MaxTypeLen)
		case a.Type == kernel.TypeRight:
			return invalid("%s: artifacts of type %q are made only by mint_right", where, a.Type)
		case a.CreatedBy == "":
			return invalid("%s: created_by is missing: name the principal of the file that creates it", where)
		case !principals[a.CreatedBy]:
			return invalid("%s: created_by %q is not a principal of the file", where, a.CreatedBy)
		}
		artifacts[a.ID] = true
		switch c := a.Contract; {
		case c == "" || genesisContracts[c] != nil || contracts[c]:
		case c == a.ID && a.Type == kernel.TypeContract:
		case c == a.ID:
			return invalid("%s: only a contract can govern itself", where)
		default:
			return invalid("%s: contract %q is neither a genesis contract nor a contract artifact listed before it", where, c)
		}
		if a.Type == kernel.TypeContract {
			contracts[a.ID] = true
		}
		hasFile := a.File != "" || a.Content != nil
		switch {
		case a.Text != nil && hasFile:
			return invalid("%s: give its content as text or as file, not both", where)
		case a.Text == nil && !hasFile:
			return invalid("%s: no content: give text or file", where)
		case a.File != "" && a.Content == nil:
			return invalid("%s: file %q was not read: use LoadSpec or ParseSpec", where, a.File)
		case (a.Type == kernel.TypeContract || a.Type == kernel.TypeExecutable) && len(a.content()) == 0:
			return invalid("%s: a %s needs a wasm module as content", where, a.Type)
		}
		if len(a.Metadata) > abi.MaxMetaPairs {
			return invalid("%s: %d metadata pairs exceed %d", where, len(a.Metadata), abi.MaxMetaPairs)
		}
		for k, v := range a.Metadata {
			if k == "" || len(k) > abi.MaxMetaKeyLen || strings.IndexByte(k, 0) >= 0 {
				return invalid("%s: metadata key %q: use 1-%d bytes, no NUL", where, k, abi.MaxMetaKeyLen)
			}
			if len(v) > abi.MaxMetaValueLen {
				return invalid("%s: metadata value of %q: %d bytes exceed %d", where, k, len(v), abi.MaxMetaValueLen)
			}
		}
	}
	return nil
}

// content is the artifact's content: Text, else Content.
func (a *ArtifactSpec) content() []byte {
	if a.Text != nil {
		return []byte(*a.Text)
	}
	return a.Content
}

// DefaultDiskQuota is the disk quota of a new principal in DefaultQuotas:
// 16 MiB, room for every module under examples/ at once (the three Go
// guests take 2.7 to 3.5 MB each, 9.6 MB together), where the kernel's own
// default of 1,000,000 bytes holds none of the Go ones.
const DefaultDiskQuota = 16 << 20

// DefaultQuotas returns the quotas of a new principal in a world that runs
// the genesis contracts: the kernel's (kernel.DefaultQuotas) with disk
// raised to DefaultDiskQuota. Pass it as kernel.Config.DefaultQuotas, next
// to DefaultContract. The map is new on each call and owned by the caller.
func DefaultQuotas() map[kernel.Resource]int64 {
	q := make(map[kernel.Resource]int64, len(kernel.Resources))
	for r, v := range kernel.DefaultQuotas {
		q[r] = v
	}
	q[kernel.Disk] = DefaultDiskQuota
	return q
}

func invalid(format string, args ...any) error {
	return &kernel.Error{Code: abi.InvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

func knownResource(r kernel.Resource) bool {
	for _, x := range kernel.Resources {
		if x == r {
			return true
		}
	}
	return false
}

func resourceList() string {
	names := make([]string, len(kernel.Resources))
	for i, r := range kernel.Resources {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// validID is the kernel's rule for principal and artifact ids (its
// validID, unexported there; TestSpecRulesMatchKernel holds the two
// together): 1 to abi.MaxIDLen bytes of letters, digits and - _ . : / @, in
// segments separated by single slashes, none of them empty, "." or "..".
func validID(s string) bool {
	if len(s) == 0 || len(s) > abi.MaxIDLen {
		return false
	}
	for _, seg := range strings.Split(s, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			case c == '-' || c == '_' || c == '.' || c == ':' || c == '@':
			default:
				return false
			}
		}
	}
	return true
}

const idRule = "use 1-128 letters, digits and - _ . : @ in segments separated by single /, none of them . or .."

// validType is the kernel's rule for artifact types: 1 to abi.MaxTypeLen
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
