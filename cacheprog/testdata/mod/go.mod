module example.com/kachetiny

go 1.24
