package postgres_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/kernelhost/kernelhost/store"
	"github.com/kernelhost/kernelhost/store/postgres"
)

// Open a store on a PostgreSQL database and increment a counter, running
// the Update again on a conflict as the kernel does. (This example needs a
// server, so it is compiled, not run; the package's tests start one.)
func ExampleOpen() {
	s, err := postgres.Open("postgres://kernelhost@127.0.0.1:5432/world?sslmode=disable", postgres.Options{
		MaxConns: 8,
		Timeout:  10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

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
	for {
		// Another node may have changed the counter since this Update read
		// it: SERIALIZABLE refuses the commit, and the Update runs again.
		err := s.Update(increment)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		break
	}
	_ = s.View(func(tx store.Txn) error {
		v, err := tx.Get([]byte("counter"))
		fmt.Println(v, err)
		return nil
	})
}
