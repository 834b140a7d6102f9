/**
 * Deep freezing of table values, for stores that hand out frozen values (the testkit's memory
 * store). A frozen value makes a mutation of what a table read returned throw in strict-mode code,
 * instead of changing the stored object until the next restart.
 */

/** Freezes `value` and every object it holds, in place; returns it. Byte arrays stay writable. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value
  // Buffers and typed arrays cannot be frozen (Object.freeze throws on a view with elements).
  if (ArrayBuffer.isView(value)) return value
  Object.freeze(value)
  // Frozen before the walk, so a cycle ends at the isFrozen check above.
  for (const key of Reflect.ownKeys(value)) {
    const property = Object.getOwnPropertyDescriptor(value, key)
    // A getter is not run: it may compute, and what it returns is not stored state.
    if (property && 'value' in property) deepFreeze(property.value)
  }
  return value
}
