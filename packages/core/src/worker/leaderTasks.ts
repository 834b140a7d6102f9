/**
 * `app.task(fn, { onLeader: true })`: run once by the worker that leads the group, as soon as it
 * is both ready and the leader (it may become the leader later, when the previous one leaves).
 * Running them is the jobs room's; this file only decides when.
 */
export class LeaderTasks {
  private ready = false
  private leader = false
  private ran = false

  constructor(private readonly run: () => void) {}

  /** The worker is running. */
  started(): void {
    this.ready = true
    this.maybeRun()
  }

  /** The worker has become the leader. */
  becameLeader(): void {
    this.leader = true
    this.maybeRun()
  }

  private maybeRun(): void {
    if (this.ran || !this.ready || !this.leader) return
    this.ran = true
    this.run()
  }
}
