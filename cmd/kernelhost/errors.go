package main

import (
	"errors"

	"github.com/kernelhost/kernelhost/kernel"
)

func asKernel(err error, ke **kernel.Error) bool { return errors.As(err, ke) }
