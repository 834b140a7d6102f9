import { describe, expect, it } from 'vitest'
import type { FetchedMessage } from './abortedFilter.js'
import { abortedFilter } from './abortedFilter.js'

const record = (offset: number, producerId: string, control = false): FetchedMessage => ({
  offset: String(offset),
  key: null,
  value: null,
  timestamp: '0',
  isControlRecord: control,
  batchContext: { producerId, inTransaction: true },
})

describe('abortedFilter', () => {
  it('drops records of interleaved aborted transactions listed in abort order', () => {
    // Producers 1 and 2 both start at 0 and 1; 2 aborts first, so the broker lists it first.
    const log = [record(0, '1'), record(1, '2'), record(2, '1'), record(3, '2', true), record(4, '1', true)]
    const isAborted = abortedFilter([
      { producerId: '2', firstOffset: '1' },
      { producerId: '1', firstOffset: '0' },
    ])
    expect(log.map(isAborted)).toEqual([true, true, true, true, true])
  })

  it('keeps records of producers with no aborted transaction', () => {
    const isAborted = abortedFilter([{ producerId: '1', firstOffset: '0' }])
    expect([record(0, '1'), record(1, '3')].map(isAborted)).toEqual([true, false])
  })
})
