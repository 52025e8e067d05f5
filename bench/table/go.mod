module github.com/kernelhost/kernelhost/bench/table

go 1.26.8
