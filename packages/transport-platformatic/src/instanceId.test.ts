import { describe, expect, it } from 'vitest'
import { claimInstanceId, defaultInstanceId } from './instanceId.js'

describe('static membership ids', () => {
  it('default to MEPHISTO_INSTANCE_ID, else the host and the --workers index', () => {
    expect(defaultInstanceId({ MEPHISTO_INSTANCE_ID: ' w-7 ' }, 'h')).toBe('w-7')
    // A pool started with it set still gives each child its own.
    expect(defaultInstanceId({ MEPHISTO_INSTANCE_ID: 'pod-1', MEPHISTO_WORKER_INDEX: '3' }, 'h')).toBe(
      'pod-1-w3',
    )
    expect(defaultInstanceId({ MEPHISTO_WORKER_INDEX: '2' }, 'box.local')).toBe('box.local-w2')
    expect(defaultInstanceId({}, 'box')).toBe('box-w0')
    expect(defaultInstanceId({ MEPHISTO_WORKER_INDEX: 'x' }, 'my box')).toBe('my_box-w0')
  })

  it('are taken once per group in a process: a second consumer gets .2, a freed id is taken again', () => {
    const a = claimInstanceId('c', 'g', 'id')
    const b = claimInstanceId('c', 'g', 'id')
    const other = claimInstanceId('c', 'other-group', 'id')
    expect([a.id, b.id, other.id]).toEqual(['id', 'id.2', 'id'])
    a.release()
    a.release()
    expect(claimInstanceId('c', 'g', 'id').id).toBe('id')
    expect(claimInstanceId('c', 'g', 'id').id).toBe('id.3')
  })
})
