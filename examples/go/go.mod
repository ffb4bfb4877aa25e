module github.com/Hexa08/NEF/examples/go

go 1.19

require github.com/Hexa08/NEF/bindings/go v0.0.0

// The package from this checkout (no module proxy is needed).
replace github.com/Hexa08/NEF/bindings/go => ../../bindings/go
