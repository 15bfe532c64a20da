// Three neffos processes behind one redis-server (issue 6, docs/protocol.md §14.3).
import { scaleoutSuite } from './lib/suite.mjs';

scaleoutSuite('redis');
