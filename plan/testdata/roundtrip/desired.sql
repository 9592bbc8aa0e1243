-- A corpus of table definitions written from the MariaDB 10.11 and
-- MySQL 8.0 CREATE TABLE reference pages: every column type, index kind,
-- table option, partitioning, generated column, check constraint and
-- foreign key shape both document (and MariaDB runs). The round-trip test
-- creates it from empty, alters variant.sql into it, and plans it against
-- itself.

CREATE TABLE numeric_types (
  id bigint unsigned NOT NULL AUTO_INCREMENT,
  ti tinyint, tiu tinyint unsigned, tiz tinyint(3) unsigned zerofill, b1 tinyint(1) NOT NULL DEFAULT 0,
  si smallint DEFAULT -1, mi mediumint unsigned, i int(8), iz int(6) zerofill, bi bigint DEFAULT 42,
  d decimal(12,2) NOT NULL DEFAULT 0, d0 decimal(10), f float, f2 float(7,3), db double, dbp double precision,
  r real, bt bit(8) DEFAULT b'101', bo boolean DEFAULT TRUE,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE temporal_types (
  id int NOT NULL PRIMARY KEY,
  d date DEFAULT '2000-01-01', dc date DEFAULT (CURRENT_DATE), t time(3), dt datetime(6) DEFAULT CURRENT_TIMESTAMP(6),
  ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  ts2 timestamp(3) NULL DEFAULT NULL, y year
);

CREATE TABLE string_types (
  id int NOT NULL PRIMARY KEY,
  c char(10) NOT NULL DEFAULT '', vc varchar(255) COLLATE utf8mb4_unicode_ci, nv national varchar(20),
  l1 varchar(40) CHARACTER SET latin1, bn binary(16), vb varbinary(64),
  tb tinyblob, bl blob, mb mediumblob, lb longblob, tt tinytext, tx text, mt mediumtext, lt longtext,
  e enum('a','b','c') NOT NULL DEFAULT 'a', s set('x','y','z') DEFAULT 'x,y',
  j json, jn json NOT NULL, cb blob COMPRESSED, u uuid, ip6 inet6, ip4 inet4,
  g geometry NOT NULL, pt point NOT NULL, ls linestring, pg polygon,
  hidden_col int INVISIBLE,
  SPATIAL KEY sp_g (g)
) DEFAULT CHARSET=utf8mb4 COMMENT='every string, binary, json and spatial type';

CREATE TABLE index_kinds (
  id int NOT NULL,
  a int NOT NULL, b varchar(200), c text, d int, e int,
  PRIMARY KEY (id, a),
  UNIQUE KEY uk_a_b (a, b),
  KEY k_b_prefix (b(20)),
  KEY k_d_desc (d DESC, e),
  KEY k_e (e) COMMENT 'why this index',
  KEY k_ignored (e, d) IGNORED,
  FULLTEXT KEY ft_c (c),
  KEY k_hash (d) USING BTREE
) ENGINE=InnoDB ROW_FORMAT=DYNAMIC STATS_PERSISTENT=1 COMMENT='index kinds';

CREATE TABLE generated_cols (
  id int NOT NULL PRIMARY KEY,
  price decimal(10,2) NOT NULL,
  qty int NOT NULL,
  total decimal(12,2) AS (price * qty) STORED,
  label varchar(40) AS (concat('#', id)) VIRTUAL,
  doc json,
  doc_name varchar(50) AS (json_unquote(json_extract(doc, '$.name'))) VIRTUAL,
  KEY k_total (total),
  KEY k_doc_name (doc_name)
);

CREATE TABLE checks (
  id int NOT NULL PRIMARY KEY,
  qty int CHECK (qty >= 0),
  lo int, hi int,
  CONSTRAINT lo_le_hi CHECK (lo <= hi),
  CONSTRAINT positive CHECK (id > 0)
);

-- MariaDB names CHECK constraints per table: the unnamed ones below are
-- CONSTRAINT_1 in each, and two tables may share a name (positive).
CREATE TABLE checks_unnamed_a (
  id int NOT NULL PRIMARY KEY,
  x int,
  CHECK (x > 0)
);

CREATE TABLE checks_unnamed_b (
  id int NOT NULL PRIMARY KEY,
  y int,
  CHECK (y > 0),
  CHECK (y < 100),
  CONSTRAINT positive CHECK (id > 0)
);

CREATE TABLE parent (
  id int NOT NULL,
  code varchar(10) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_code (code)
);

CREATE TABLE child (
  id int NOT NULL PRIMARY KEY,
  parent_id int,
  parent_code varchar(10),
  KEY k_parent (parent_id),
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE SET NULL ON UPDATE CASCADE,
  CONSTRAINT fk_code FOREIGN KEY (parent_code) REFERENCES parent (code) ON DELETE CASCADE
);

CREATE TABLE tree (
  id int NOT NULL PRIMARY KEY,
  up int,
  CONSTRAINT fk_up FOREIGN KEY (up) REFERENCES tree (id)
);

CREATE TABLE composite_parent (
  a int NOT NULL, b int NOT NULL,
  PRIMARY KEY (a, b)
);

CREATE TABLE composite_child (
  id int NOT NULL PRIMARY KEY,
  a int, b int,
  KEY k_ab (a, b),
  CONSTRAINT fk_ab FOREIGN KEY (a, b) REFERENCES composite_parent (a, b) ON DELETE RESTRICT ON UPDATE NO ACTION
);

CREATE TABLE part_range (
  id int NOT NULL,
  created date NOT NULL,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (year(created)) (
  PARTITION p2023 VALUES LESS THAN (2024),
  PARTITION p2024 VALUES LESS THAN (2025),
  PARTITION pmax VALUES LESS THAN MAXVALUE
);

CREATE TABLE part_list (
  id int NOT NULL,
  region int NOT NULL,
  PRIMARY KEY (id, region)
) PARTITION BY LIST (region) (
  PARTITION east VALUES IN (1, 2),
  PARTITION west VALUES IN (3, 4)
);

CREATE TABLE part_hash (
  id int NOT NULL PRIMARY KEY
) PARTITION BY HASH (id) PARTITIONS 4;

CREATE TABLE part_sub (
  id int NOT NULL,
  created date NOT NULL,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (year(created)) SUBPARTITION BY HASH (to_days(created)) SUBPARTITIONS 2 (
  PARTITION p2023 VALUES LESS THAN (2024),
  PARTITION pmax VALUES LESS THAN MAXVALUE
);

CREATE TABLE part_key (
  id int NOT NULL PRIMARY KEY
) PARTITION BY KEY (id) PARTITIONS 2;

CREATE TABLE options_myisam (
  id int NOT NULL PRIMARY KEY,
  v varchar(10)
) ENGINE=MyISAM AVG_ROW_LENGTH=50 MAX_ROWS=1000 CHECKSUM=1 PACK_KEYS=1 DELAY_KEY_WRITE=1;

CREATE TABLE options_aria (
  id int NOT NULL PRIMARY KEY
) ENGINE=Aria TRANSACTIONAL=1 PAGE_CHECKSUM=1;

CREATE TABLE options_innodb (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v varchar(10)
) ENGINE=InnoDB AUTO_INCREMENT=1000 ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8 STATS_AUTO_RECALC=0 STATS_SAMPLE_PAGES=20 DEFAULT CHARSET=latin1 COLLATE=latin1_bin;

CREATE TABLE versioned (
  id int NOT NULL PRIMARY KEY,
  v int
) WITH SYSTEM VERSIONING;

CREATE TABLE serials (
  id SERIAL,
  n int
);

CREATE TABLE serial_default (
  n int NOT NULL SERIAL DEFAULT VALUE
);
