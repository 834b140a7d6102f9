/**
 * Runs tasks one at a time per key, in call order. A task that fails does not stop the next one;
 * its caller gets the failure. Keys with nothing queued hold no memory.
 */
export class KeyedLock<K> {
  private readonly tails = new Map<K, Promise<void>>()

  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    // Tails never reject, so the task runs whatever became of the one before it.
    const run = (this.tails.get(key) ?? Promise.resolve()).then(task)
    const tail = run.then(
      () => {},
      () => {},
    )
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return run
  }
}
