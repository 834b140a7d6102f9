/**
 * The probe a worker hands its sensors once it runs (`onWorkerStarted`): each agent's oldest event
 * in progress and queued events, read from the agent runtimes when a sensor asks, so reporting
 * them costs nothing per event. It reads only; what counts as stalled is the web's `/health`.
 */
import type { AgentRuntime } from '../agents/agentRuntime.js'
import type { AgentProgress, WorkerProbe } from '../sensors/sensor.js'
import type { WorkerStatus } from './state.js'

/** A probe of `agents`, which reads nothing once `status` says the worker stopped or crashed. */
export function workerProbe(agents: ReadonlyMap<unknown, AgentRuntime>, status: WorkerStatus): WorkerProbe {
  return {
    agents(): AgentProgress[] {
      // A dead worker's runtimes may still hold abandoned actors; they are no one's work now.
      if (status.dead) return []
      const progress: AgentProgress[] = []
      for (const rt of agents.values()) {
        progress.push({
          agent: rt.agent.name,
          oldestEventAgeMs: rt.oldestEventAgeMs(),
          queued: rt.queues().reduce((n, q) => n + q.size, 0),
        })
      }
      return progress
    },
  }
}
