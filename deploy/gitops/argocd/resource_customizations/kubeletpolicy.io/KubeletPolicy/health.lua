-- Argo CD health of a kubeletpolicy.io/KubeletPolicy, from the conditions the controller
-- writes (kstatus conventions):
--   no status yet, or status for an older generation  -> Progressing
--   Stalled=True                                      -> Degraded (no progress without a change)
--   spec.suspend: true                                -> Suspended
--   Reconciling=True (first check or a rollout)       -> Progressing
--   Ready=True                                        -> Healthy, with the compliance counts
-- Non-compliant nodes do not make a policy unhealthy: under Audit they are findings, shown in
-- the message; the Compliant condition and status.summary carry them.
local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function counts(status)
  local s = status.summary
  if s == nil then
    return ""
  end
  local function n(v)
    if v == nil then
      return 0
    end
    return v
  end
  local msg = string.format("%d nodes selected: %d compliant, %d non-compliant, %d unknown",
    n(s.selectedNodes), n(s.compliantNodes), n(s.nonCompliantNodes), n(s.unknownNodes))
  if n(s.remediatingNodes) > 0 then
    msg = msg .. string.format(", %d remediating", s.remediatingNodes)
  end
  return msg
end

local hs = {}
local status = obj.status
if status == nil or (status.conditions == nil and status.observedGeneration == nil) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to check the policy"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for the controller to observe generation %d", generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or stalled.reason or "Stalled"
  return hs
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: no checks run"
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = reconciling.message or reconciling.reason or "Reconciling"
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = counts(status)
  if hs.message == "" then
    hs.message = ready.message or ""
  end
  return hs
end

hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
else
  hs.message = "Waiting for the Ready condition"
end
return hs
