// Three neffos processes behind one nats-server (issue 6, docs/protocol.md §14.4).
import { scaleoutSuite } from './lib/suite.mjs';

scaleoutSuite('nats');
