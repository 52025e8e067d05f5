package store_test

import (
	"errors"
	"fmt"

	"github.com/kernelhost/kernelhost/store"
)

func ExampleNewMem() {
	s := store.NewMem()
	defer s.Close()

	err := s.Update(func(tx store.Txn) error {
		return tx.Set([]byte("greeting"), []byte("hello"))
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.View(func(tx store.Txn) error {
		v, err := tx.Get([]byte("greeting"))
		fmt.Printf("%s %v\n", v, err)
		_, err = tx.Get([]byte("missing"))
		fmt.Println(errors.Is(err, store.ErrNotFound))
		return nil
	})
	// Output:
	// hello <nil>
	// true
}

func ExampleOpenBadger() {
	// A real deployment passes a directory and leaves InMemory false: every
	// Update that returns nil is then fsynced.
	s, err := store.OpenBadger("", store.BadgerOptions{InMemory: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	// Update does not retry on conflict: the caller does.
	increment := func(tx store.Txn) error {
		v, err := tx.Get([]byte("counter"))
		if errors.Is(err, store.ErrNotFound) {
			v, err = []byte{0}, nil
		}
		if err != nil {
			return err
		}
		return tx.Set([]byte("counter"), []byte{v[0] + 1})
	}
	for range 3 {
		for {
			err := s.Update(increment)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				fmt.Println(err)
				return
			}
			break
		}
	}
	_ = s.View(func(tx store.Txn) error {
		v, err := tx.Get([]byte("counter"))
		fmt.Println(v[0], err)
		return nil
	})
	// Output:
	// 3 <nil>
}

func ExampleTxn_Iterate() {
	s := store.NewMem()
	defer s.Close()
	_ = s.Update(func(tx store.Txn) error {
		for _, k := range []string{"user/carol", "user/alice", "item/1", "user/bob"} {
			if err := tx.Set([]byte(k), nil); err != nil {
				return err
			}
		}
		return nil
	})
	_ = s.View(func(tx store.Txn) error {
		// Keys under "user/" from "user/b" on, stopping after two.
		n := 0
		return tx.Iterate([]byte("user/"), []byte("user/b"), func(key, _ []byte) error {
			fmt.Println(string(key))
			if n++; n == 2 {
				return store.ErrStop
			}
			return nil
		})
	})
	// Output:
	// user/bob
	// user/carol
}
