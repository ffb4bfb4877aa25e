package nef

// #include "gonef.h"
import "C"

import (
	"encoding/json"
)

// Version is the NEF library's version (the VERSION file of the build, "MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.nef_version()) }

// Stats returns NEF's process-wide counters since start or the last ResetStats:
// graphs_executed, nodes_executed, kernel_cache_hits, kernel_cache_misses, plan_cache_hits,
// plan_cache_misses, nodes_folded, nodes_eliminated, bytes_allocated, embedded_plans_used.
// Reading a computed value again does not execute again: graphs_executed shows it.
func Stats() (map[string]int64, error) {
	var text string
	err := call(func() C.nef_status {
		var js *C.char
		st := C.nef_stats_json(&js)
		if st == C.NEF_OK {
			text = C.GoString(js)
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		return nil, errorf(CodeError, "[stats] %v", err)
	}
	return out, nil
}

// ResetStats zeroes the counters.
func ResetStats() error { return call(func() C.nef_status { return C.nef_reset_stats() }) }

// DeviceReport is the hardware NEF detected, as `nef devices --json` prints it.
type DeviceReport struct {
	NEFVersion string   `json:"nef_version"`
	CPU        CPUInfo  `json:"cpu"`
	Memory     Memory   `json:"memory"`
	Devices    []Device `json:"devices"`
	// Problems are the backends that found no device here, with why.
	Problems []struct {
		Backend string `json:"backend"`
		Reason  string `json:"reason"`
	} `json:"problems"`
	// Enabled are the devices the planner may use: those of SetDevices, else of the
	// NEF_DEVICES environment variable, else every device.
	Enabled []string `json:"enabled"`
}

// CPUInfo describes the CPU; cache sizes are per core, 0 when unknown.
type CPUInfo struct {
	Vendor        string `json:"vendor"`
	Model         string `json:"model"`
	Arch          string `json:"arch"`
	PhysicalCores int    `json:"physical_cores"`
	LogicalCores  int    `json:"logical_cores"`
	Cache         struct {
		L1dBytes int64 `json:"l1d_bytes"`
		L2Bytes  int64 `json:"l2_bytes"`
		L3Bytes  int64 `json:"l3_bytes"`
	} `json:"cache"`
	// Features are the SIMD features the OS lets NEF use ("avx2": true, ...).
	Features map[string]bool `json:"features"`
}

// Memory is the machine's memory at detection time.
type Memory struct {
	TotalBytes     int64 `json:"total_bytes"`
	AvailableBytes int64 `json:"available_bytes"`
}

// Device is one compute device the backends found.
type Device struct {
	Name          string            `json:"name"`    // the instance id SetDevices and NEF_DEVICES name: "cpu", "opencl:0"
	Kind          string            `json:"kind"`    // "cpu", "gpu", "accelerator"
	Backend       string            `json:"backend"` // the backend that drives it: "cpu", "opencl"
	Index         int               `json:"index"`   // ordinal among its backend's devices
	DeviceName    string            `json:"device_name"`
	Description   string            `json:"description"`
	Vendor        string            `json:"vendor"`
	DriverVersion string            `json:"driver_version"`
	APIVersion    string            `json:"api_version"` // "OpenCL C 1.2", ...
	ComputeUnits  int               `json:"compute_units"`
	MemoryBytes   int64             `json:"memory_bytes"`
	MaxAllocBytes int64             `json:"max_alloc_bytes"`
	HostUnified   bool              `json:"host_unified"` // shares memory with the host
	FP16          bool              `json:"fp16"`
	FP64          bool              `json:"fp64"`
	Enabled       bool              `json:"enabled"`
	Extra         map[string]string `json:"extra"`
}

// Devices returns the hardware report (probed once per process). A *DeviceError if the
// NEF_DEVICES environment variable names unknown devices.
func Devices() (*DeviceReport, error) {
	var text string
	err := call(func() C.nef_status {
		var js *C.char
		st := C.nef_devices_json(&js)
		if st == C.NEF_OK {
			text = C.GoString(js)
		}
		return st
	})
	if err != nil {
		return nil, err
	}
	var r DeviceReport
	if err := json.Unmarshal([]byte(text), &r); err != nil {
		return nil, errorf(CodeError, "[devices] %v", err)
	}
	return &r, nil
}

// SetDevices restricts the devices the planner may use ("cpu", a kind such as "gpu", ...); it
// wins over NEF_DEVICES. Unknown names are a *DeviceError naming the known devices; no names
// clears the restriction.
func SetDevices(names ...string) error {
	cs := newCStrings(names)
	defer cs.free()
	return call(func() C.nef_status { return C.nef_set_devices(cs.ptr(), C.int(len(cs))) })
}

// SetThreads sets the number of CPU kernel threads (0: all cores).
func SetThreads(n int) error {
	return call(func() C.nef_status { return C.nef_set_num_threads(C.int(n)) })
}

// Threads is the number of CPU kernel threads.
func Threads() int {
	var n C.int
	if call(func() C.nef_status { return C.nef_num_threads(&n) }) != nil {
		return 0
	}
	return int(n)
}

// Handles counts the C API handles alive in this process.
type Handles struct {
	Tensors, Graphs, Attrs int64
}

// LiveHandles returns how many handles exist: every Node and Graph holds one until Close or
// its finalizer. Tests use it to check that nothing leaks.
func LiveHandles() Handles {
	var t, g, a C.int64_t
	C.nef_live_handles(&t, &g, &a)
	return Handles{int64(t), int64(g), int64(a)}
}

// cStatusName is the C API's name for a status code (tests compare it with Code.String).
func cStatusName(c Code) string { return C.GoString(C.nef_status_name(C.nef_status(c))) }
