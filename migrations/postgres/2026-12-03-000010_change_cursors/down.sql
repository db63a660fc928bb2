DROP TABLE change_cursors;
