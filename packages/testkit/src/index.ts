export { FakeClock } from './fakeClock.js'
export type { DeadLetter, RawMessage, SentMessage, TestAppOptions } from './testApp.js'
export { TestApp } from './testApp.js'
