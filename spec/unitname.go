package spec

import "strings"

// The unit names of a workload, spelled here only: its service
// cove-NAME.service and its health check's cove-NAME-health.timer and
// cove-NAME-health.service.
const (
	unitPrefix    = "cove-"
	serviceSuffix = ".service"
)

// UnitPattern matches every workload's service (and, since a workload
// name may end in "-health", its health-check service too: see NameOfUnit).
const UnitPattern = unitPrefix + "*" + serviceSuffix

// UnitName returns the service name of workload name.
func UnitName(name string) string { return unitPrefix + name + serviceSuffix }

// HealthTimerName and HealthServiceName name a workload's health-check
// timer and probe service.
func HealthTimerName(name string) string   { return unitPrefix + name + "-health.timer" }
func HealthServiceName(name string) string { return unitPrefix + name + "-health" + serviceSuffix }

// NameOfUnit returns the workload name of a unit named by UnitName, and
// false for any other unit name.
func NameOfUnit(unit string) (string, bool) {
	rest, ok := strings.CutPrefix(unit, unitPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, serviceSuffix)
	return name, ok && name != ""
}
