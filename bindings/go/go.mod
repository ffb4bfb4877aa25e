module github.com/Hexa08/NEF/bindings/go

go 1.19
