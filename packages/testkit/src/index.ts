export { FakeClock } from './fakeClock.js'
export { TestApp } from './testApp.js'
export type { DeadLetter, RawMessage, SentMessage, TestAppOptions } from './testApp.js'
