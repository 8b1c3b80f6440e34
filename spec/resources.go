package spec

import (
	"fmt"
	"math"
)

// readResources fills r from the [resources] table t.
func readResources(t table, r *Resources) {
	t.read("memory", &r.Memory)
	t.read("cpus", &r.CPUs)
	t.read("pids", &r.Pids)
}

// resources checks the limits that are set: in a file, an explicit zero
// is set (and too small), as a zero in Resources means "no limit".
func (v *validator) resources(r *Resources) {
	const memory, cpus = "resources.memory", "resources.cpus"
	if v.set(memory, r.Memory != 0) && r.Memory < MinMemory {
		v.add(memory, fmt.Sprintf("%s is too small; at least 1M (%d bytes)", v.written(memory, fmt.Sprintf("%d bytes", r.Memory)), MinMemory))
	}
	if v.set(cpus, r.CPUs != 0) {
		if msg := checkCPUs(r.CPUs); msg != "" {
			v.add(cpus, msg)
		}
	}
}

// checkCPUs returns "" if c is in (0, MaxCPUs] and a multiple of 0.01, else
// what is wrong.
func checkCPUs(c float64) string {
	if math.IsNaN(c) || c <= 0 || c > MaxCPUs {
		return fmt.Sprintf("%v is out of range; must be a number > 0 and <= %d, such as %s", c, MaxCPUs, example("resources.cpus"))
	}
	if p := c * 100; math.Abs(p-math.Round(p)) > 1e-6 {
		return fmt.Sprintf("%v is too precise; must be a multiple of 0.01", c)
	}
	return ""
}

// vmResources checks the resources of a VM against its memory.
func (v *validator) vmResources(r *Resources, m *VM) {
	if r.Memory != 0 && r.Memory >= MinMemory && r.Memory <= m.Memory {
		v.add("resources.memory", fmt.Sprintf("%s must be more than vm.memory (%s): it limits the QEMU process, which holds the guest's memory and its own", formatSize(r.Memory), formatSize(m.Memory)))
	}
}
