// Three neffos processes behind one redis-server (issue 6, spec 14.3).
import { scaleoutSuite } from './lib/suite.mjs';

scaleoutSuite('redis');
