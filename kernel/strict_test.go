package kernel_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestStrictActionFields: an action means exactly what its bytes say. A
// field its kind does not use (which the kernel would ignore, or copy into
// the audit event at any size) and a JSON key given twice (of which
// encoding/json silently keeps the last) are INVALID_ARGUMENT, whether the
// action comes as JSON (DecodeAction: HTTP, host calls of executables) or
// as a Go value (Do, Explain), and nothing changes.
// Reference: issue 14, item 5.
func TestStrictActionFields(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			ok         bool
		}{
			// Every kind with every field it uses decodes.
			{"read", `{"kind":"read","target":"a","max_cost":5}`, true},
			{"write", `{"kind":"write","target":"a","type":"data","contract":"c","text":"x","metadata":{"k":"v"},"unset":["u"],"max_cost":0}`, true},
			{"write base64", `{"kind":"write","target":"a","type":"data","content":"eA=="}`, true},
			{"edit", `{"kind":"edit","target":"a","type":"data","content":"eA==","metadata":{"k":"v"},"unset":["u"],"max_cost":1}`, true},
			{"delete", `{"kind":"delete","target":"a","max_cost":1}`, true},
			{"set_contract", `{"kind":"set_contract","target":"a","contract":"c","max_cost":1}`, true},
			{"invoke", `{"kind":"invoke","target":"e","method":"m","args":"eA==","max_cost":1}`, true},
			{"invoke args_text", `{"kind":"invoke","target":"e","method":"m","args_text":"x"}`, true},
			{"transfer", `{"kind":"transfer","to":"bob","amount":1}`, true},
			{"grant_consent", `{"kind":"grant_consent","contract":"c","per_call_cap":1,"total_cap":2}`, true},
			{"revoke_consent", `{"kind":"revoke_consent","contract":"c"}`, true},
			{"transfer_quota", `{"kind":"transfer_quota","to":"bob","resource":"llm_rate","amount":1}`, true},
			{"consume_quota", `{"kind":"consume_quota","resource":"llm_rate","amount":1}`, true},
			{"mint_right", `{"kind":"mint_right","target":"r","resource":"llm_rate","amount":1,"contract":"c"}`, true},
			{"transfer_right", `{"kind":"transfer_right","target":"r","to":"bob"}`, true},
			{"split_right", `{"kind":"split_right","target":"r","amounts":[1,2],"ids":["r1","r2"]}`, true},
			{"merge_rights", `{"kind":"merge_rights","target":"r","ids":["r1"]}`, true},
			{"redeem_right", `{"kind":"redeem_right","target":"r"}`, true},
			{"grant_standing", `{"kind":"grant_standing","target":"e"}`, true},
			{"revoke_standing", `{"kind":"revoke_standing","target":"e"}`, true},
			{"unknown kind is validate's business", `{"kind":"frobnicate","target":"a"}`, true},

			// Fields the kind does not use.
			{"target on transfer", `{"kind":"transfer","to":"bob","amount":1,"target":"` + strings.Repeat("x", 100) + `"}`, false},
			{"empty target on transfer", `{"kind":"transfer","to":"bob","amount":1,"target":""}`, false},
			{"null target on transfer", `{"kind":"transfer","to":"bob","amount":1,"target":null}`, false},
			{"metadata on transfer", `{"kind":"transfer","to":"bob","amount":1,"metadata":{"note":"hi"}}`, false},
			{"max_cost on transfer", `{"kind":"transfer","to":"bob","amount":1,"max_cost":5}`, false},
			{"to on consume_quota", `{"kind":"consume_quota","resource":"llm_rate","amount":1,"to":"bob"}`, false},
			{"amount on grant_consent", `{"kind":"grant_consent","contract":"c","per_call_cap":1,"total_cap":2,"amount":9}`, false},
			{"content on read", `{"kind":"read","target":"a","content":"eA=="}`, false},
			{"text on delete", `{"kind":"delete","target":"a","text":"x"}`, false},
			{"method on write", `{"kind":"write","target":"a","type":"data","method":"m"}`, false},
			{"text on invoke", `{"kind":"invoke","target":"e","text":"x"}`, false},
			{"args_text on write", `{"kind":"write","target":"a","type":"data","args_text":"x"}`, false},
			{"contract on edit", `{"kind":"edit","target":"a","text":"x","contract":"c"}`, false},
			{"type on set_contract", `{"kind":"set_contract","target":"a","contract":"c","type":"data"}`, false},
			{"amount on transfer_right", `{"kind":"transfer_right","target":"r","to":"bob","amount":1}`, false},
			{"type on mint_right", `{"kind":"mint_right","target":"r","resource":"llm_rate","amount":1,"type":"right"}`, false},
			{"to on grant_standing", `{"kind":"grant_standing","target":"e","to":"bob"}`, false},
			{"max_cost on redeem_right", `{"kind":"redeem_right","target":"r","max_cost":1}`, false},
			{"ids on transfer", `{"kind":"transfer","to":"bob","amount":1,"ids":["x"]}`, false},

			// Names differing only in case: encoding/json would match them
			// to the same field, one silently overwriting the other.
			{"To on transfer", `{"kind":"transfer","to":"bob","To":"mallory","amount":1}`, false},
			{"Kind", `{"Kind":"transfer","to":"bob","amount":1}`, false},
			{"KIND overriding kind", `{"kind":"read","target":"a","KIND":"delete"}`, false},
			{"Target on unknown kind", `{"kind":"frobnicate","Target":"a"}`, false},

			// Duplicate keys, at the top level and nested.
			{"to twice", `{"kind":"transfer","to":"bob","to":"mallory","amount":1}`, false},
			{"amount twice", `{"kind":"transfer","to":"bob","amount":1,"amount":1000}`, false},
			{"kind twice", `{"kind":"read","target":"a","kind":"delete"}`, false},
			{"escaped duplicate", `{"kind":"transfer","to":"bob","t\u006f":"mallory","amount":1}`, false},
			{"metadata key twice", `{"kind":"write","target":"a","type":"data","metadata":{"controller":"alice","controller":"mallory"}}`, false},
			{"metadata twice", `{"kind":"write","target":"a","type":"data","metadata":{"k":"1"},"metadata":{"k":"2"}}`, false},
			{"same key in two objects is fine", `{"kind":"write","target":"a","type":"data","metadata":{"kind":"x","target":"y"}}`, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := kernel.DecodeAction([]byte(tc.body))
				if tc.ok {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, kernel.ErrInvalidArgument)
			})
		}
	})

	t.Run("go", func(t *testing.T) {
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 100)
		requireCode(t, abi.OK, w.Do(write("alice", "doc", "x", nil)))
		five := int64(5)
		for _, tc := range []struct {
			name  string
			a     kernel.Action
			field string
		}{
			{"target on transfer", kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 1, Target: strings.Repeat("x", 1<<20)}, "target"},
			{"metadata on transfer", kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 1, Metadata: map[string]string{"k": "v"}}, "metadata"},
			{"max_cost on transfer", kernel.Action{Kind: kernel.KindTransfer, To: "bob", Amount: 1, MaxCost: &five}, "max_cost"},
			{"contract on consume_quota", kernel.Action{Kind: kernel.KindConsumeQuota, Resource: string(kernel.LLMRate), Amount: 1, Contract: "freeware"}, "contract"},
			{"to on consume_quota", kernel.Action{Kind: kernel.KindConsumeQuota, Resource: string(kernel.LLMRate), Amount: 1, To: "bob"}, "to"},
			{"amount on read", kernel.Action{Kind: kernel.KindRead, Target: "doc", Amount: 7}, "amount"},
			{"to on write", kernel.Action{Kind: kernel.KindWrite, Target: "doc", Type: "data", To: "bob"}, "to"},
			{"resource on delete", kernel.Action{Kind: kernel.KindDelete, Target: "doc", Resource: "disk"}, "resource"},
			{"method on edit", kernel.Action{Kind: kernel.KindEdit, Target: "doc", Content: []byte("y"), Method: "m"}, "method"},
			{"args on write", kernel.Action{Kind: kernel.KindWrite, Target: "doc", Type: "data", Args: []byte("a")}, "args"},
			{"caps on set_contract", kernel.Action{Kind: kernel.KindSetContract, Target: "doc", Contract: "private", PerCallCap: 1}, "per_call_cap"},
			{"total_cap on revoke_consent", kernel.Action{Kind: kernel.KindRevokeConsent, Contract: "freeware", TotalCap: 1}, "total_cap"},
			{"type on transfer_quota", kernel.Action{Kind: kernel.KindTransferQuota, To: "bob", Resource: string(kernel.LLMRate), Amount: 1, Type: "data"}, "type"},
			{"unset on invoke", kernel.Action{Kind: kernel.KindInvoke, Target: "doc", Unset: []string{"k"}}, "unset"},
			{"content on redeem_right", kernel.Action{Kind: kernel.KindRedeemRight, Target: "r", Content: []byte{}}, "content"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.a.Caller = "alice"
				before := snapshot(t, w.Store)
				evs, err := w.K.Events(ctx, 0, 1000)
				require.NoError(t, err)
				res := w.Do(tc.a)
				requireCode(t, abi.InvalidArgument, res)
				require.Contains(t, res.Message, `"`+tc.field+`"`)
				require.Less(t, len(res.Message), 200, "the message does not echo the field's value")
				require.Equal(t, before, snapshot(t, w.Store))
				after, err := w.K.Events(ctx, 0, 1000)
				require.NoError(t, err)
				require.Len(t, after, len(evs), "no audit event, so nothing copied into one")
				_, err = w.K.Explain(ctx, tc.a)
				require.ErrorIs(t, err, kernel.ErrInvalidArgument)
			})
		}
		// The same fields on the kinds that use them are fine.
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "doc", MaxCost: &five}))
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1}))
		require.Equal(t, uint64(99), w.Balance(t, "alice"))
	})

	t.Run("host calls", func(t *testing.T) {
		// An executable's actions follow the same rule: the nested action is
		// refused (the executable sees INVALID_ARGUMENT) and changes nothing.
		w := kerneltest.NewWorld(t, nil)
		w.Principal(t, "alice", 100)
		w.Principal(t, "bob", 0)
		w.Principal(t, "mallory", 0)
		for name, action := range map[string]string{
			"extra field":   `{"kind":"transfer","to":"bob","amount":1,"target":"junk"}`,
			"duplicate key": `{"kind":"transfer","to":"bob","to":"mallory","amount":1}`,
		} {
			t.Run(name, func(t *testing.T) {
				id := "exe-" + strings.ReplaceAll(name, " ", "-")
				var got map[string]any
				w.DeployExecutable(t, "alice", id, "allow-all", func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error) {
					_ = json.Unmarshal(calls.Call([]byte(`{"action":`+action+`}`)), &got)
					return abi.InvokeResult{OK: true}, nil
				})
				before := snapshot(t, w.Store)
				res := w.Do(invoke("alice", id, "run"))
				requireCode(t, abi.OK, res) // the executable itself carried on
				require.Equal(t, "INVALID_ARGUMENT", got["error_code"], "nested result: %v", got)
				require.Equal(t, before, snapshot(t, w.Store))
				require.Equal(t, uint64(100), w.Balance(t, "alice"))
				require.Equal(t, uint64(0), w.Balance(t, "mallory"))
			})
		}
	})

	t.Run("every field is in the table", func(t *testing.T) {
		// A field added to Action without an entry in the kernel's table
		// of kinds and fields would be refused by every kind (or worse,
		// ignored): name each one in a kind that uses it.
		used := map[string]bool{}
		for _, body := range []string{
			`{"kind":"write","target":"a","type":"data","contract":"c","content":"eA==","metadata":{"k":"v"},"unset":["u"],"max_cost":0}`,
			`{"kind":"invoke","target":"e","method":"m","args":"eA==","max_llm_cost":10}`,
			`{"kind":"grant_consent","contract":"c","per_call_cap":1,"total_cap":2}`,
			`{"kind":"transfer_quota","to":"bob","resource":"llm_rate","amount":1}`,
			`{"kind":"split_right","target":"r","amounts":[1,2],"ids":["r1","r2"]}`,
			`{"kind":"transfer","to":"bob","amount":1,"request_id":"t-1"}`,
		} {
			_, err := kernel.DecodeAction([]byte(body))
			require.NoError(t, err, body)
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &m))
			for k := range m {
				used[k] = true
			}
		}
		at := reflect.TypeFor[kernel.Action]()
		for i := 0; i < at.NumField(); i++ {
			name, _, _ := strings.Cut(at.Field(i).Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			require.True(t, used[name], "Action field %s (%q) is used by no kind in this test: add it to the kernel's table and here", at.Field(i).Name, name)
		}
	})
}
